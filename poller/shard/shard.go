// Package shard splits an app's groups over replicas that share one
// state store. Every replica computes, for each group, which shard owns it
// by rendezvous hashing (highest random weight): the owner is the shard
// index whose hash of (sdkappid, group id, index) is highest. Each replica
// needs only the shard count and its own index, nothing is coordinated,
// and a change of the count from n to n+1 moves only the ~1/(n+1) of the
// groups that the new index now wins, all of them to it.
//
// The hash is xxhash64, fixed by its specification, so that every replica
// (whatever its build or platform) agrees on the owners; the golden values
// in the tests pin it.
package shard

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/rollcall-dev/rollcall/schema/config"
)

// MaxCount bounds shard.count: far above any sensible replica count, low
// enough that Owns (one hash per shard) stays cheap.
const MaxCount = 1024

// Config is the `shard` section of the configuration file.
type Config struct {
	// Count is the number of replicas the groups are split over.
	Count int `yaml:"count"`
	// Index is this replica's shard, 0-based. An explicit 0 cannot be told
	// from an absent one.
	Index int `yaml:"index"`
	// IndexFromHostname takes the index from the trailing -N of the
	// hostname, as a StatefulSet names its pods (rollcall-2 → 2).
	IndexFromHostname bool `yaml:"index_from_hostname"`
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Count == 0 {
		c.Count = 1
	}
}

// Validate checks c after SetDefaults; paths are relative to the section.
// The hostname is checked by Resolve.
func (c Config) Validate() error {
	if c.Count < 1 || c.Count > MaxCount {
		return config.Errorf("count", "must be between 1 and %d (got %d)", MaxCount, c.Count)
	}
	if c.IndexFromHostname {
		if c.Index != 0 {
			return config.Errorf("index", "set either shard.index or shard.index_from_hostname, not both")
		}
		return nil
	}
	if c.Index < 0 || c.Index >= c.Count {
		return config.Errorf("index", "must be at least 0 and below shard.count %d (got %d)", c.Count, c.Index)
	}
	return nil
}

// Resolve returns this replica's shard: Index, or with IndexFromHostname
// the trailing -N of hostname, which must be below Count. Call it after
// Validate; its errors are *config.FieldError relative to the section.
func (c Config) Resolve(hostname string) (Shard, error) {
	if !c.IndexFromHostname {
		return New(c.Count, c.Index)
	}
	i := strings.LastIndexByte(hostname, '-')
	n, err := strconv.Atoi(hostname[i+1:])
	// Atoi takes a sign: "-" followed by "-1" or "+1" is no ordinal.
	if i < 0 || err != nil || n < 0 || hostname[i+1] == '+' || hostname[i+1] == '-' {
		return Shard{}, config.Errorf("index_from_hostname", "hostname %q does not end in -N (a StatefulSet pod's ordinal)", hostname)
	}
	if n >= c.Count {
		return Shard{}, config.Errorf("index_from_hostname", "hostname %q gives index %d, not below shard.count %d", hostname, n, c.Count)
	}
	return New(c.Count, n)
}

// Shard is one replica's part: index Index of Count. The zero value is
// not valid; a Shard is made by New or Config.Resolve.
type Shard struct {
	Count int
	Index int
}

// New returns shard index of count.
func New(count, index int) (Shard, error) {
	if count < 1 || count > MaxCount {
		return Shard{}, fmt.Errorf("shard: count %d: must be between 1 and %d", count, MaxCount)
	}
	if index < 0 || index >= count {
		return Shard{}, fmt.Errorf("shard: index %d: must be at least 0 and below the count %d", index, count)
	}
	return Shard{Count: count, Index: index}, nil
}

// Owns reports whether s polls the group groupID of app sdkappid.
func (s Shard) Owns(sdkappid uint64, groupID string) bool {
	return s.Count == 1 || Owner(s.Count, sdkappid, groupID) == s.Index
}

// String is "INDEX/COUNT", for logs.
func (s Shard) String() string { return strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count) }

// maxKey is the stack buffer's size: sdkappid, index and a group id up to
// Tencent's 48 bytes (longer ids take the heap).
const maxKey = 8 + 8 + 48

// Owner is the shard index, of count, that owns the group: the index with
// the highest Weight, the lowest index on a tie.
func Owner(count int, sdkappid uint64, groupID string) int {
	var buf [maxKey]byte
	key := keyFor(buf[:0], sdkappid, groupID)
	best, bestW := 0, uint64(0)
	for i := 0; i < count; i++ {
		binary.BigEndian.PutUint64(key[8:16], uint64(i))
		if w := xxhash.Sum64(key); i == 0 || w > bestW {
			best, bestW = i, w
		}
	}
	return best
}

// Weight is the rendezvous weight of the group for shard index: xxhash64
// of sdkappid (8 bytes, big endian), index (8 bytes, big endian) and the
// group id's bytes. It is part of the replicas' protocol: replicas that
// disagreed on it would poll a group twice or not at all.
func Weight(sdkappid uint64, groupID string, index int) uint64 {
	var buf [maxKey]byte
	key := keyFor(buf[:0], sdkappid, groupID)
	binary.BigEndian.PutUint64(key[8:16], uint64(index))
	return xxhash.Sum64(key)
}

func keyFor(b []byte, sdkappid uint64, groupID string) []byte {
	b = binary.BigEndian.AppendUint64(b, sdkappid)
	b = binary.BigEndian.AppendUint64(b, 0) // the index, set per shard
	return append(b, groupID...)
}
