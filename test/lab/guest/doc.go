// Package guest holds the lab tests: they run inside the QEMU lab guest
// (test/lab/run.sh, `make lab-test`) against a real kernel with an iSCSI SAN,
// SCSI-3 persistent reservations and device-mapper. Outside the lab (no
// MTC_LAB=1) every test skips at once with the reason.
package guest
