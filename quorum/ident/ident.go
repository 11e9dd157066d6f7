// Package ident holds the identities of cluster nodes: node ids and
// incarnations. It imports nothing, so that packages below the quorum
// state machine (fencing, the storage it protects) can name nodes without
// depending on quorum and its configuration; quorum re-exports these
// types under the same names.
package ident

// MaxNodes is the largest cluster and the largest node id.
const MaxNodes = 16

// NodeID is a configured node id, 1..MaxNodes.
type NodeID uint8

// Incarnation identifies one start of a node's daemon: a random non-zero
// number chosen at each start, so a restarted node is told from a node
// that froze and came back.
type Incarnation uint64
