package main

// `up --node`: the control plane plus one real node (containerd + runc from
// Debian, the CNI bridge, kubelet, kube-scheduler, kube-proxy, CoreDNS, and a
// local volume provisioner), all inside a network namespace of our own.
//
// Why a network namespace: kubelet refuses a loopback node address, and this
// workplace allows traffic only to loopback or to addresses inside namespaces
// we create. So the node's address lives on an interface inside the
// namespace, the pods' bridge too, and nothing can be routed out of it.
//
// Two processes:
//   - the host side (this process, in the host's namespace) creates the
//     namespace, forwards a loopback port of the host to the API server
//     inside it, and after the node has stopped sweeps what containers leave
//     behind (processes, mounts, cgroups, the namespace itself);
//   - the node side: `up --in-netns NAME`, re-executed inside the namespace,
//     runs the control plane and the node as children.
//
// The API server listens on the same port number on both sides, so one
// kubeconfig serves the host and the node.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	nodeName = "dbaas-node"
	// The node's address, on an interface inside the namespace. Private
	// addresses are fine here: they exist only inside our namespace.
	nodeIP     = "10.200.0.2"
	nodeIPCIDR = nodeIP + "/24"
	podCIDR    = "10.244.0.0/24"
	// The API server's --service-cluster-ip-range.
	serviceCIDR = "10.0.0.0/24"
	// The local volume provisioner's StorageClass (the default one).
	storageClassName = "dbaas-local"
	provisionerName  = "dbaas.io/local-volume"
)

// netnsName is the namespace of a data directory: stable, so that a stale
// namespace of an earlier run on the same directory is found and replaced.
func netnsName(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "dbaas-" + hex.EncodeToString(sum[:])[:10]
}

// cgroupRootOf is where kubelet puts the node's pods (every hierarchy), so
// that the sweep finds exactly this node's containers.
func cgroupRootOf(netns string) string { return "/" + netns }

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// checkNodePrerequisites says what the machine lacks for a node, all at once.
func checkNodePrerequisites(coredns string) error {
	var missing []string
	for _, tool := range []string{"ip", "containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, plugin)); err != nil {
			missing = append(missing, "CNI plugin "+filepath.Join(cniBinDir, plugin))
		}
	}
	if coredns != "" {
		if _, err := os.Stat(coredns); err != nil {
			missing = append(missing, "coredns binary "+coredns)
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces, mounts, cgroups)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("the node needs: %s (Debian: apt-get install iproute2 containerd runc "+
			"containernetworking-plugins iptables)", strings.Join(missing, ", "))
	}
	return nil
}

const cniBinDir = "/usr/lib/cni"

// netnsThread runs work on one OS thread that has entered the namespace and
// never leaves it: children forked from it are born inside the namespace
// (and their Pdeathsig is tied to a thread that lives as long as we do), and
// sockets it creates belong to the namespace.
type netnsThread struct {
	work chan func()
}

func enterNetns(path string) (*netnsThread, error) {
	t := &netnsThread{work: make(chan func())}
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread stays in the namespace
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		ready <- err
		if err != nil {
			return
		}
		for f := range t.work {
			f()
		}
	}()
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("entering network namespace %s: %w", path, err)
	}
	return t, nil
}

func (t *netnsThread) do(f func()) {
	done := make(chan struct{})
	t.work <- func() { f(); close(done) }
	<-done
}

func (t *netnsThread) dial(addr string) (net.Conn, error) {
	var conn net.Conn
	var err error
	t.do(func() { conn, err = net.DialTimeout("tcp", addr, 5*time.Second) })
	return conn, err
}

// runNodeHost is `up --node` on the host side.
func runNodeHost(ctx context.Context, o upOptions, createdDir bool) int {
	if err := checkNodePrerequisites(o.coredns); err != nil {
		logf("%v", err)
		return 3 // distinct from a startup failure: callers may fall back to no node
	}
	name := netnsName(o.dataDir)
	_ = run("ip", "netns", "del", name) // a stale one of an earlier run on this directory
	if err := setupNetns(name); err != nil {
		logf("network namespace: %v", err)
		_ = run("ip", "netns", "del", name)
		return 1
	}
	code := runNodeInNetns(ctx, o, name)
	t := time.Now()
	sweepNode(o.dataDir, name)
	logf("node swept (containers, mounts, cgroups, namespace %s) in %.2fs", name, time.Since(t).Seconds())
	if o.cleanup {
		cleanupDataDir(o.dataDir, createdDir)
	}
	return code
}

func setupNetns(name string) error {
	steps := [][]string{
		{"ip", "netns", "add", name},
		{"ip", "-n", name, "link", "set", "lo", "up"},
		// The node's interface: one end of a veth pair whose both ends stay in
		// the namespace (this kernel has no dummy interfaces).
		{"ip", "-n", name, "link", "add", "dbaas0", "type", "veth", "peer", "name", "dbaas1"},
		{"ip", "-n", name, "addr", "add", nodeIPCIDR, "dev", "dbaas0"},
		{"ip", "-n", name, "link", "set", "dbaas0", "up"},
		{"ip", "-n", name, "link", "set", "dbaas1", "up"},
		// Service addresses need a route for the node's own connections to be
		// sent at all; kube-proxy's rules then rewrite them to a pod's address.
		{"ip", "-n", name, "route", "add", serviceCIDR, "dev", "dbaas0"},
		// Nothing leaves the namespace: what is not local is unreachable.
		{"ip", "-n", name, "route", "add", "unreachable", "default"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	// Per-namespace sysctls: routing between the bridge and the node, and
	// kube-proxy's rules for bridged pod-to-pod traffic through Services.
	return run("ip", "netns", "exec", name, "sysctl", "-q", "-w",
		"net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")
}

// runNodeInNetns starts the node side inside the namespace, forwards the API
// server's port, relays the READY line and waits until it ends.
func runNodeInNetns(ctx context.Context, o upOptions, name string) int {
	thread, err := enterNetns("/run/netns/" + name)
	if err != nil {
		logf("%v", err)
		return 1
	}
	// Hold the host port from now on: the node side binds the same number.
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		logf("forward listener: %v", err)
		return 1
	}
	defer listener.Close()
	apiPort := listener.Addr().(*net.TCPAddr).Port

	self, err := os.Executable()
	if err != nil {
		logf("%v", err)
		return 1
	}
	args := []string{"up", "--data-dir", o.dataDir, "--in-netns", name, "--api-port", strconv.Itoa(apiPort),
		"--exit-on-stdin-close", "--startup-timeout", o.timeout.String()}
	for _, c := range o.crds {
		args = append(args, "--crds", c)
	}
	for _, img := range o.images {
		args = append(args, "--image", img)
	}
	if o.coredns != "" {
		args = append(args, "--coredns", o.coredns)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf("%v", err)
		return 1
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf("%v", err)
		return 1
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	thread.do(func() { err = cmd.Start() })
	if err != nil {
		logf("starting the node side: %v", err)
		return 1
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	go forward(listener, thread, fmt.Sprintf("127.0.0.1:%d", apiPort))

	// Relay the node side's stdout (the READY line) to ours.
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(os.Stdout, sc.Text())
			_ = os.Stdout.Sync()
		}
	}()

	select {
	case <-ctx.Done():
		logf("shutting down the node side")
		stdin.Close() // it stops on stdin EOF; SIGTERM as well, in case it is starting up
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			logf("the node side did not stop in time, killing it")
			_ = cmd.Process.Kill()
			<-exited
		}
		return 0
	case <-exited:
		if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == 0 {
			return 0
		}
		return 1
	}
}

// forward relays every connection to the host's listener into the namespace.
func forward(l net.Listener, thread *netnsThread, target string) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			upstream, err := thread.dial(target)
			if err != nil {
				return
			}
			defer upstream.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(upstream, conn); closeWrite(upstream); done <- struct{}{} }()
			go func() { _, _ = io.Copy(conn, upstream); closeWrite(conn); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// sweepNode removes what the node's containers leave behind once the node
// side has stopped: runc keeps containers running without containerd, and
// their shims outlive it by design.
func sweepNode(dir, netns string) {
	nodeDir := filepath.Join(dir, "node")
	root := cgroupRootOf(netns)
	for round := 0; round < 50; round++ {
		killed := 0
		// Containers: every process in the node's cgroups.
		for _, pid := range cgroupPids(root) {
			if unix.Kill(pid, unix.SIGKILL) == nil {
				killed++
			}
		}
		// Shims and anything else started with our directory on its command line.
		for _, pid := range pidsWithArg(nodeDir) {
			if unix.Kill(pid, unix.SIGKILL) == nil {
				killed++
			}
		}
		if killed == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	unmountUnder(dir)
	removeCgroups(root)
	if err := run("ip", "netns", "del", netns); err != nil {
		logf("sweep: %v", err)
	}
}

func cgroupHierarchies() []string {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if st, err := os.Lstat(p); err == nil && st.IsDir() {
			out = append(out, p)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.procs"); err == nil {
		out = append(out, "/sys/fs/cgroup") // a pure cgroup v2 machine
	}
	return out
}

// createCgroupRoot makes the node's cgroup root in every hierarchy (kubelet
// requires it to exist). A new cpuset cgroup starts with no CPUs: copy the parent's.
func createCgroupRoot(root string) error {
	for _, h := range cgroupHierarchies() {
		p := filepath.Join(h, root)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			parent, err := os.ReadFile(filepath.Join(h, f))
			if err != nil {
				continue
			}
			if err := os.WriteFile(filepath.Join(p, f), parent, 0o644); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(p, f), err)
			}
		}
	}
	return nil
}

func cgroupPids(root string) []int {
	var pids []int
	for _, h := range cgroupHierarchies() {
		_ = filepath.WalkDir(filepath.Join(h, root), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

func removeCgroups(root string) {
	for _, h := range cgroupHierarchies() {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(h, root), func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) }) // leaves first
		for _, d := range dirs {
			_ = unix.Rmdir(d)
		}
	}
}

func pidsWithArg(needle string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), needle) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmountUnder detaches every mount below dir (container root filesystems,
// pod volumes, namespace files), deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, mp := range points {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			logf("sweep: unmount %s: %v", mp, err)
		}
	}
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
