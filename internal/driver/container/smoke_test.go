package container

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	e := newTestEnv(t)
	for _, userns := range []bool{false, true} {
		s := e.spec(userns, "sleep", "1000")
		pid := e.start(s)
		t.Logf("pid %d status:\n%s", pid, readProc(t, pid, "status"))
		t.Logf("uid_map %s", readProc(t, pid, "uid_map"))
		t.Logf("mountinfo %s", readProc(t, pid, "mountinfo"))
		st, err := e.d.State(context.Background(), s.ID)
		t.Logf("state %+v %v", st, err)
		if err := e.d.Stop(context.Background(), s.ID, 0, 0, true); err != nil {
			t.Fatal(err)
		}
		t.Logf("exit %+v", e.exits.wait(t, s.ID, 5e9))
		e.assertGone(s.ID)
		b, _ := e.d.ConsoleLog(context.Background(), s.ID)
		t.Logf("console %q", b)
	}
}
