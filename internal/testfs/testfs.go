// Package testfs makes the folders that tests of failing storage need: a
// folder this process cannot write, and a small file system that can be
// filled. Where the system does not permit what a test needs (mounting
// as a user), the test is skipped with a message saying why.
package testfs

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// root reports whether the process runs as root, which writes through
// file modes: only a read-only mount stops it.
func root() bool { return os.Geteuid() == 0 }

// ReadOnlyDir returns a new folder holding what fill puts in it, then made
// read-only for this process: by file modes (folders 0555, files 0444)
// for a user, by a read-only tmpfs mount for root. The folder is removed
// (unmounted) when the test ends.
func ReadOnlyDir(t testing.TB, fill func(dir string)) string {
	t.Helper()
	if !root() {
		dir := t.TempDir()
		fill(dir)
		setModes(t, dir, 0o555, 0o444)
		t.Cleanup(func() { setModes(t, dir, 0o755, 0o644) })
		return dir
	}
	dir := Tmpfs(t, "16m")
	fill(dir)
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount %s read-only (%v: %s): skipping the read-only storage test", dir, err, strings.TrimSpace(string(out)))
	}
	return dir
}

// ReadOnlyFile makes the file at path read-only for this process: mode
// 0444 for a user. Root writes through modes, so for root it reports
// false and changes nothing: use ReadOnlyDir.
func ReadOnlyFile(t testing.TB, path string) bool {
	t.Helper()
	if root() {
		return false
	}
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(path, 0o644) })
	return true
}

func setModes(t testing.TB, dir string, dirMode, fileMode fs.FileMode) {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		return os.Chmod(p, fileMode)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Folders last, deepest first: a folder made read-only still lets its
	// files be changed, but read-only folders must not stop the walk.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], dirMode); err != nil {
			t.Fatal(err)
		}
	}
}

// Tmpfs mounts a tmpfs of the given size ("4m") on a new folder and
// returns it; it is unmounted and removed when the test ends. The test
// is skipped, saying why, where mounting is not permitted (not root, no
// mount command, a container without the capability).
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	if !root() {
		t.Skip("mounting a tmpfs needs root: skipping the full or read-only file system test")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("no mount command: skipping the full or read-only file system test")
	}
	dir, err := os.MkdirTemp("", "testfs-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		_ = os.Remove(dir)
		t.Skipf("mounting a tmpfs is not permitted here (%v: %s): skipping the full or read-only file system test", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			// Something still uses it: detach it lazily.
			if out2, err2 := exec.Command("umount", "-l", dir).CombinedOutput(); err2 != nil {
				t.Errorf("unmount %s: %v: %s; %s", dir, err, out, out2)
				return
			}
		}
		_ = os.Remove(dir)
	})
	return dir
}
