package nethb

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

const (
	// MinKeyLen is the shortest accepted cluster key: 32 random bytes,
	// the HMAC-SHA256 block strength.
	MinKeyLen = 32
	// maxKeyLen bounds what LoadKey reads, so a wrong path (a device, a
	// log file) fails clearly instead of loading megabytes as a key.
	maxKeyLen = 4096
)

// ErrKeyFile is wrapped by every KeyFileError.
var ErrKeyFile = errors.New("unusable cluster key file")

// KeyFileError says which key file is unusable, why, and how to fix it.
type KeyFileError struct {
	Path    string
	Problem string
	Fix     string
}

func (e *KeyFileError) Error() string {
	return fmt.Sprintf("cluster key file %s: %s; %s", e.Path, e.Problem, e.Fix)
}

func (e *KeyFileError) Unwrap() error { return ErrKeyFile }

const createKeyHint = "create one with: head -c 32 /dev/urandom > %[1]s; chmod 600 %[1]s (and copy it to every node)"

// LoadKey reads the cluster key from path. It refuses anything but a
// regular file of mode 0600 or stricter owned by root or by the current
// user, and a key shorter than MinKeyLen bytes.
func LoadKey(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer for ever; on a regular file it changes nothing.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &KeyFileError{Path: path, Problem: "is a symbolic link", Fix: "point the configuration at the real file"}
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, &KeyFileError{Path: path, Problem: "does not exist", Fix: fmt.Sprintf(createKeyHint, path)}
		}
		return nil, &KeyFileError{Path: path, Problem: err.Error(), Fix: "check the path and its permissions"}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &KeyFileError{Path: path, Problem: err.Error(), Fix: "check the path"}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyFileError{Path: path, Problem: fmt.Sprintf("is not a regular file (%s)", fi.Mode().Type()), Fix: fmt.Sprintf(createKeyHint, path)}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &KeyFileError{Path: path,
			Problem: fmt.Sprintf("has mode %04o: group or others may read or write the cluster key", perm),
			Fix:     fmt.Sprintf("run: chmod 600 %s", path)}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
			return nil, &KeyFileError{Path: path,
				Problem: fmt.Sprintf("is owned by uid %d, neither root nor this process (uid %d)", st.Uid, os.Geteuid()),
				Fix:     fmt.Sprintf("run: chown root %s", path)}
		}
	}
	key, err := io.ReadAll(io.LimitReader(f, maxKeyLen+1))
	if err != nil {
		return nil, &KeyFileError{Path: path, Problem: err.Error(), Fix: "check the file"}
	}
	if len(key) < MinKeyLen {
		return nil, &KeyFileError{Path: path,
			Problem: fmt.Sprintf("holds %d bytes, fewer than the minimum %d", len(key), MinKeyLen),
			Fix:     fmt.Sprintf(createKeyHint, path)}
	}
	if len(key) > maxKeyLen {
		return nil, &KeyFileError{Path: path,
			Problem: fmt.Sprintf("is larger than %d bytes: this is not a cluster key", maxKeyLen),
			Fix:     fmt.Sprintf(createKeyHint, path)}
	}
	return key, nil
}
