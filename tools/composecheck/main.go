// composecheck validates compose files with compose-go, the loader Docker Compose itself uses:
// JSON-schema validation, interpolation of ${VAR:?message} and the cross-checks of the model.
// Usage: composecheck FILE [KEY=VALUE ...]   (KEY=VALUE pairs stand in for the environment)
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck FILE [KEY=VALUE ...]")
		os.Exit(2)
	}
	file, _ := filepath.Abs(os.Args[1])
	var env []string
	for _, kv := range os.Args[2:] {
		if strings.Contains(kv, "=") {
			env = append(env, kv)
		}
	}
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnv(env),
		cli.WithName("composecheck"),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("ok: %d services\n", len(project.Services))
}
