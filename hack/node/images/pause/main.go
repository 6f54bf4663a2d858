// pause is the process of the Kubernetes pod sandbox container
// (localhost/dbaas/pause): it holds the pod's namespaces open, does nothing,
// reaps any zombie re-parented to it (it is PID 1 of the pod when the pod
// shares its process namespace) and exits 0 on SIGTERM or SIGINT, as the
// upstream C pause does. Built with CGO_ENABLED=0 into a static binary.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is what `pause -v` prints; build.sh passes the image tag.
var version = "dev"

func main() {
	if len(os.Args) > 1 {
		if os.Args[1] == "-v" {
			fmt.Printf("pause.go %s\n", version)
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "usage: pause [-v]")
		os.Exit(2)
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	reap() // children may have exited before the handler was installed
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reap()
		default:
			fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
			os.Exit(0)
		}
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil { // 0: children left but none exited; ECHILD: no children
			return
		}
	}
}
