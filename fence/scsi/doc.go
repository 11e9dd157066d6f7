// Package scsi issues SCSI-3 persistent reservation commands from Go over
// the Linux SG_IO ioctl, and decodes what comes back.
//
// The pieces are small and separable:
//
//   - cdb.go: pure functions that build the CDBs and the PR OUT parameter
//     list (golden-byte tests; the lab compares them with sg_persist -vvv).
//   - prin.go: decoders of READ KEYS, READ RESERVATION and REPORT
//     CAPABILITIES parameter data (fuzzed).
//   - sense.go: fixed (0x70/0x71) and descriptor (0x72/0x73) sense data,
//     deferred errors included (fuzzed).
//   - transport.go: a Request owns its CDB, data and sense buffers; a
//     Transport issues it; Check interprets the result in order: SCSI
//     status, host status, driver status, with sense data decoded for
//     CHECK CONDITION.
//   - sgio_linux.go: the SG_IO Transport. sg_io_hdr is laid out as the
//     64-bit kernel ABI (88 bytes; a test checks every offset).
//   - device.go: a Device issues PR IN/OUT over any Transport, clears unit
//     attentions with TEST UNIT READY and retries a bounded number of
//     times.
//
// Every command has a deadline: the sg_io_hdr timeout is the Device's
// per-command timeout shortened to the context's deadline, and when the
// context ends first the call returns ErrTimeout at once (the ioctl itself
// cannot be abandoned; it finishes in the background with its own
// buffers).
//
// Errors wrap exactly one of ErrReservationConflict, ErrUnitAttention,
// ErrNotSupported, ErrPath (ErrTimeout is also ErrPath),
// ErrCheckCondition or ErrBadResponse; *SenseError and *StatusError carry
// the details.
//
// Not guaranteed: that a command which returned ErrPath or ErrTimeout did
// not take effect on the target. Callers read the state back.
package scsi
