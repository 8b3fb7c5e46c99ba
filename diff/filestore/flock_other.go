//go:build !unix

package filestore

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// flock is unsupported here: rollcall's state directory needs flock(2).
func flock(*os.File) error {
	return errors.New("directory locking needs a unix system")
}
