package scsi

import (
	"errors"
	"os"
)

func writeFile(p string) error { return os.WriteFile(p, []byte("not a disk"), 0o600) }

func isNotSupported(err error) bool { return errors.Is(err, ErrNotSupported) }
