// Command hangar is the command line client of hangard.
package main

import (
	"os"

	"github.com/hangar-dev/hangar/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
