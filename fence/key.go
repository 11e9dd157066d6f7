package fence

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/mtcluster/mtc/quorum/ident"
)

// Key is a PR reservation key: 8 bytes, big-endian on the wire.
//
// MT-Cluster's keys are derived, never stored:
//
//	byte   0-5   cluster tag: the first 6 bytes of
//	             SHA-256("mtc-pr-key-v1" || cluster UUID as 16 bytes)
//	byte   6     key format, 0x01
//	byte   7     node id, 1..16
//
// So a node's key is the same across restarts and reinstalls (it needs only
// the cluster configuration), differs between clusters sharing a SAN, and is
// never zero (the node id is not). KeyOwner tells which node of which
// cluster a key on a LUN belongs to; keys of other software (fence_scsi,
// another cluster) are reported as foreign. A node's incarnation is not in
// the key: a restarted node's registration must replace its old one, and
// fencing removes a node by key whatever incarnation registered it.
type Key uint64

// keyFormat is byte 6 of every key of this layout.
const keyFormat = 0x01

// ErrForeignKey: a key is not one of this cluster's.
var ErrForeignKey = errors.New("key does not belong to this cluster")

func clusterTag(cluster uuid.UUID) uint64 {
	h := sha256.New()
	h.Write([]byte("mtc-pr-key-v1"))
	h.Write(cluster[:])
	sum := h.Sum(nil)
	return binary.BigEndian.Uint64(sum[:8]) >> 16 // top 6 bytes
}

// NodeKey is node's key in cluster. It panics on a node id outside
// 1..ident.MaxNodes: configuration validation rules that out.
func NodeKey(cluster uuid.UUID, node ident.NodeID) Key {
	if node < 1 || node > ident.MaxNodes {
		panic(fmt.Sprintf("fence.NodeKey: node id %d outside 1..%d", node, ident.MaxNodes))
	}
	return Key(clusterTag(cluster)<<16 | keyFormat<<8 | uint64(node))
}

// KeyOwner returns the node k belongs to in cluster, or ErrForeignKey.
func KeyOwner(cluster uuid.UUID, k Key) (ident.NodeID, error) {
	node := ident.NodeID(k & 0xff)
	if uint64(k)>>16 != clusterTag(cluster) || (k>>8)&0xff != keyFormat || node < 1 || node > ident.MaxNodes {
		return 0, fmt.Errorf("%v: %w %v", k, ErrForeignKey, cluster)
	}
	return node, nil
}

// String prints the key as sg_persist does: 0x followed by 16 hex digits.
func (k Key) String() string { return fmt.Sprintf("0x%016x", uint64(k)) }

// Owner describes whose key k is, for operators: "node 3", or "foreign
// (not cluster UUID)" when it is not this cluster's.
func (k Key) Owner(cluster uuid.UUID) string {
	if n, err := KeyOwner(cluster, k); err == nil {
		return fmt.Sprintf("node %d", n)
	}
	return "foreign (not a key of cluster " + cluster.String() + ")"
}

// MarshalText prints the key as String does (JSON shows "0x...").
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a key in hex, with or without 0x.
func (k *Key) UnmarshalText(b []byte) error {
	s := strings.TrimPrefix(strings.ToLower(string(b)), "0x")
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return fmt.Errorf("reservation key %q: %w", b, err)
	}
	*k = Key(v)
	return nil
}
