package osthread

import (
	"os"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The test binary's main goroutine keeps the main thread (locked in init)
// and runs what onMain hands it, so a test can act from the main thread.
func init() { runtime.LockOSThread() }

var mainFuncs = make(chan func())

func TestMain(m *testing.M) {
	code := make(chan int)
	go func() { code <- m.Run() }()
	for {
		select {
		case f := <-mainFuncs:
			f()
		case c := <-code:
			os.Exit(c)
		}
	}
}

func onMain(f func()) {
	done := make(chan struct{})
	mainFuncs <- func() { f(); close(done) }
	<-done
}

// TestElsewhereFromMainThread is the case the package exists for: work
// asked for on the main thread runs on another, and the main thread is
// still the caller's afterwards.
func TestElsewhereFromMainThread(t *testing.T) {
	var caller, worker, after int
	onMain(func() {
		caller = unix.Gettid()
		elsewhere(func() { worker = unix.Gettid() })
		after = unix.Gettid()
	})
	if caller != os.Getpid() {
		t.Fatalf("the test's main goroutine runs on thread %d, not the main thread %d", caller, os.Getpid())
	}
	if worker == caller {
		t.Fatal("the work ran on the main thread")
	}
	if after != caller {
		t.Fatalf("the caller moved from thread %d to %d", caller, after)
	}
}

// TestThrowaway: from many goroutines at once, every fn runs, on a thread
// other than the main one and other than its caller's.
func TestThrowaway(t *testing.T) {
	const n = 50
	var mu sync.Mutex
	ran := 0
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			caller := unix.Gettid()
			Throwaway(func() {
				tid := unix.Gettid()
				mu.Lock()
				defer mu.Unlock()
				ran++
				if tid == os.Getpid() || tid == caller {
					t.Errorf("fn ran on thread %d (main %d, caller %d)", tid, os.Getpid(), caller)
				}
			})
		}()
	}
	wg.Wait()
	if ran != n {
		t.Fatalf("%d of %d ran", ran, n)
	}
}
