package cloexec

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv makes the test binary a child that runs Inherited and prints
// which of its descriptors 3, 4 and 5 are close-on-exec.
const childEnv = "CLOEXEC_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// "self" stands for the child's own pid, unknown to the parent.
		if os.Getenv("LISTEN_PID") == "self" {
			os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
		}
		if err := Inherited(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		var out []string
		for fd := 3; fd <= 5; fd++ {
			out = append(out, strconv.FormatBool(isCloexec(fd)))
		}
		fmt.Println(strings.Join(out, " "))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func isCloexec(fd int) bool {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil && flags&unix.FD_CLOEXEC != 0
}

// leak opens a descriptor without close-on-exec, as one inherited from a
// shell would be.
func leak(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if isCloexec(fd) {
		t.Fatal("a descriptor opened without O_CLOEXEC is close-on-exec")
	}
	return fd
}

func TestFrom(t *testing.T) {
	for _, tc := range []struct {
		name string
		mark func(low int) error
	}{
		{"close_range", From},
		{"proc walk", walk}, // the path of kernels before 5.11
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd := leak(t)
			if err := tc.mark(3); err != nil {
				t.Fatal(err)
			}
			if !isCloexec(fd) {
				t.Errorf("descriptor %d is still inherited by children", fd)
			}
			// Marked, not closed: the daemon keeps using it.
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil {
				t.Errorf("descriptor %d closed: %v", fd, err)
			}
		})
	}
	if err := From(-1); err == nil {
		t.Error("From(-1) succeeded")
	}
}

// TestInherited starts a child with descriptors 3, 4 and 5 inherited
// without close-on-exec and checks which ones Inherited marks.
func TestInherited(t *testing.T) {
	for _, tc := range []struct {
		name      string
		listenPID string
		listenFDs string
		want      string // close-on-exec of 3, 4 and 5
	}{
		{"no socket activation", "", "", "true true true"},
		{"two activation descriptors", "self", "2", "false false true"},
		{"activation meant for another process", "1", "2", "true true true"},
		{"LISTEN_FDS not a number", "self", "two", "true true true"},
		{"LISTEN_FDS negative", "self", "-1", "true true true"},
		{"LISTEN_PID not a number", "x", "2", "true true true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			self, err := os.Executable()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), childEnv+"=1", "LISTEN_PID="+tc.listenPID, "LISTEN_FDS="+tc.listenFDs)
			for range 3 {
				f, err := os.Open("/dev/null")
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				cmd.ExtraFiles = append(cmd.ExtraFiles, f) // inherited without close-on-exec
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v: %s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("close-on-exec of 3 4 5 = %q, want %q", got, tc.want)
			}
		})
	}
}
