package container

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// Exec with a terminal runs this binary inside the container as its
	// helper, as hangard's main does.
	if IsExecTTYHelper() {
		RunExecTTYHelper()
	}
	os.Exit(m.Run())
}
