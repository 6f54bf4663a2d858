package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const contextName = "dbaas-local"

// controllersFor: everything, minus the controllers that only make sense
// with a cloud provider or with node CIDR allocation. Without a node, the
// node-lifecycle controller is off as well; with one, it removes the
// not-ready taint kubelet registers with.
func controllersFor(withNode bool) string {
	c := "*,-node-ipam-controller,-cloud-node-lifecycle-controller," +
		"-service-lb-controller,-node-route-controller,-persistentvolume-attach-detach-controller"
	if !withNode {
		c += ",-node-lifecycle-controller"
	}
	return c
}

type upOptions struct {
	dataDir          string
	crds             stringList
	exitOnStdinClose bool
	cleanup          bool
	timeout          time.Duration
	// The node (node.go): --node on the host side; the node side is
	// re-executed with --in-netns and --api-port.
	node    bool
	images  stringList
	coredns string
	inNetns string
	apiPort int
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "controlplane: "+format+"\n", args...)
}

func runUp(args []string) int {
	startedAt := processStartTime()
	var o upOptions
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for PKI, etcd data, logs and the kubeconfig (required)")
	fs.Var(&o.crds, "crds", "CRD file or directory to install (recursive, *.yaml/*.yml, multi-document); repeatable")
	fs.BoolVar(&o.exitOnStdinClose, "exit-on-stdin-close", false, "shut down when stdin reaches EOF (the parent process went away)")
	fs.BoolVar(&o.cleanup, "cleanup", false, "remove --data-dir on shutdown")
	fs.DurationVar(&o.timeout, "startup-timeout", 3*time.Minute, "give up if the control plane is not ready within this time")
	fs.BoolVar(&o.node, "node", false, "also run a node (kubelet, containerd, CNI, kube-proxy, CoreDNS, kube-scheduler) "+
		"inside a network namespace of its own; exit status 3 if the machine lacks what it needs")
	fs.Var(&o.images, "image", "with --node: an OCI image archive to import into the node's containerd; repeatable")
	fs.StringVar(&o.coredns, "coredns", "", "with --node: the coredns binary for cluster DNS (none: no cluster DNS)")
	fs.StringVar(&o.inNetns, "in-netns", "", "internal: the node side, running inside this network namespace")
	fs.IntVar(&o.apiPort, "api-port", 0, "internal: the API server's port (the host side forwards the same port)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: controlplane up --data-dir DIR [--crds PATH]... [--exit-on-stdin-close] [--cleanup]\n\n"+
			"Starts etcd, kube-apiserver and kube-controller-manager on free loopback ports,\n"+
			"installs the CRDs, writes DIR/kubeconfig and prints one line to stdout:\n"+
			"  READY kubeconfig=<abs path> server=https://127.0.0.1:<port> startup=<seconds>s\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.dataDir == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	dir, err := filepath.Abs(o.dataDir)
	if err != nil {
		logf("%v", err)
		return 1
	}
	if strings.ContainsAny(dir, " \t\r\n") {
		logf("--data-dir %q: whitespace is not allowed (the READY line is space-separated)", dir)
		return 2
	}
	o.dataDir = dir
	_, statErr := os.Stat(dir)
	createdDir := os.IsNotExist(statErr)

	// Stop on SIGINT/SIGTERM, or on stdin EOF when asked to.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if o.exitOnStdinClose {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel(errors.New("stdin closed"))
		}()
	}
	if o.node && o.inNetns == "" {
		return runNodeHost(ctx, o, createdDir)
	}

	var code int
	for attempt := 1; ; attempt++ {
		cp := &controlPlane{opts: o, dir: dir}
		code = cp.run(ctx, startedAt)
		t := time.Now()
		cp.shutdown()
		logf("stopped all components in %.2fs", time.Since(t).Seconds())
		// The free ports are only reserved until we close them: another process
		// may grab one before our child binds it. Retry with fresh ports.
		if !cp.portConflict || attempt >= 3 || ctx.Err() != nil {
			break
		}
		logf("a port was taken by another process; retrying with new ports (attempt %d)", attempt+1)
	}
	if o.cleanup {
		cleanupDataDir(dir, createdDir)
	}
	return code
}

// cleanupDataDir removes what "up" put into dir, and dir itself if it is then
// empty (or if "up" created it). Never a blind RemoveAll of a pre-existing
// directory: a mistyped --data-dir must not wipe unrelated files.
func cleanupDataDir(dir string, created bool) {
	if created {
		if err := os.RemoveAll(dir); err != nil {
			logf("cleanup: %v", err)
			return
		}
		logf("removed %s", dir)
		return
	}
	for _, n := range []string{"pki", "etcd", "logs", "node", "kubeconfig", "kubeconfig.tmp",
		"kube-controller-manager.kubeconfig", "kube-controller-manager.kubeconfig.tmp"} {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			logf("cleanup: %v", err)
		}
	}
	if err := os.Remove(dir); err != nil {
		logf("cleanup: kept %s: %v", dir, err)
		return
	}
	logf("removed %s", dir)
}

type controlPlane struct {
	opts         upOptions
	dir          string
	mu           sync.Mutex
	procs        []*child
	dead         chan struct{} // closed when the first child exits
	firstExit    *child
	portConflict bool // a child failed with "address already in use"
}

type child struct {
	name     string
	logStart int64 // size of the (appended) log file when this run started
	cmd      *exec.Cmd
	logPath  string
	done     chan struct{}
	err      error
}

func (cp *controlPlane) run(ctx context.Context, startedAt time.Time) int {
	o := cp.opts
	dir := cp.dir
	cp.dead = make(chan struct{})
	for _, d := range []string{dir, filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			logf("%v", err)
			return 1
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "etcd"), 0o700); err != nil {
		logf("%v", err)
		return 1
	}
	p, generated, err := ensurePKI(filepath.Join(dir, "pki"))
	if err != nil {
		logf("pki: %v", err)
		return 1
	}
	if generated {
		logf("generated PKI in %s", p.Dir)
	}
	ports, err := freePorts(4)
	if err != nil {
		logf("free ports: %v", err)
		return 1
	}
	etcdClient, etcdPeer, apiPort, kcmPort := ports[0], ports[1], ports[2], ports[3]
	if o.apiPort != 0 {
		apiPort = o.apiPort
	}
	withNode := o.inNetns != ""
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	bins := resolveBinaries()

	runCtx := ctx
	ctx, cancelTimeout := context.WithTimeout(ctx, o.timeout) // startup only
	defer cancelTimeout()

	// kubeconfig for the controller manager (its own client certificate).
	kcmKubeconfig := filepath.Join(dir, "kube-controller-manager.kubeconfig")
	if err := writeKubeconfig(kcmKubeconfig, server, p.CACert, p.KCMCert, p.KCMKey, "system:kube-controller-manager"); err != nil {
		logf("%v", err)
		return 1
	}

	// 1. etcd
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	if err := cp.start("etcd", bins["etcd"],
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync=true", // throw-away test cluster
		"--quota-backend-bytes=8589934592",
	); err != nil {
		logf("%v", err)
		return 1
	}
	plainClient := &http.Client{Timeout: 2 * time.Second}
	if err := cp.waitHTTP(ctx, "etcd", plainClient, etcdURL+"/health"); err != nil {
		return cp.fail(err)
	}
	logf("etcd ready on %s (%.2fs)", etcdURL, time.Since(startedAt).Seconds())

	// 2. kube-apiserver
	apiserverFlags := []string{
		"--etcd-servers=" + etcdURL,
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + p.Dir,
		"--tls-cert-file=" + p.ServingCert,
		"--tls-private-key-file=" + p.ServingKey,
		"--client-ca-file=" + p.CACert,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p.SAPub,
		"--service-account-signing-key-file=" + p.SAKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		"--profiling=false",
	}
	if withNode {
		apiserverFlags = append(apiserverFlags,
			// Inside the node's namespace: pods reach us through the
			// "kubernetes" Service at the node's address.
			"--bind-address=0.0.0.0",
			"--advertise-address="+nodeIP,
			"--endpoint-reconciler-type=lease",
			// Logs, exec and port-forward: kubelet authorizes us as an admin.
			"--kubelet-client-certificate="+p.AdminCert,
			"--kubelet-client-key="+p.AdminKey,
			"--kubelet-preferred-address-types=InternalIP",
			// Webhooks and aggregated APIs are dialled at their pods' addresses.
			"--enable-aggregator-routing=true",
		)
	} else {
		apiserverFlags = append(apiserverFlags,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			// The only apiserver address is loopback, which the Endpoints API rejects:
			// do not try to publish it as the endpoint of the "kubernetes" Service.
			"--endpoint-reconciler-type=none",
		)
	}
	if err := cp.start("kube-apiserver", bins["kube-apiserver"], apiserverFlags...); err != nil {
		return cp.fail(err)
	}
	adminTLS, err := tlsConfig(p.CACert, p.AdminCert, p.AdminKey)
	if err != nil {
		return cp.fail(err)
	}
	adminHTTP := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: adminTLS}}
	if err := cp.waitHTTP(ctx, "kube-apiserver", adminHTTP, server+"/readyz"); err != nil {
		return cp.fail(err)
	}
	logf("kube-apiserver ready on %s (%.2fs)", server, time.Since(startedAt).Seconds())

	// 3. kube-controller-manager (started now, its readiness is checked below
	// in parallel with the CRD installation).
	if err := cp.start("kube-controller-manager", bins["kube-controller-manager"],
		"--kubeconfig="+kcmKubeconfig,
		"--authentication-kubeconfig="+kcmKubeconfig,
		"--authorization-kubeconfig="+kcmKubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(kcmPort),
		"--tls-cert-file="+p.ServingCert,
		"--tls-private-key-file="+p.ServingKey,
		"--client-ca-file="+p.CACert,
		"--authentication-skip-lookup=true", // no front proxy: do not look for a requestheader CA
		"--service-account-private-key-file="+p.SAKey,
		"--root-ca-file="+p.CACert,
		"--cluster-signing-cert-file="+p.CACert,
		"--cluster-signing-key-file="+p.CAKey,
		"--use-service-account-credentials=true",
		"--controllers="+controllersFor(withNode),
		"--leader-elect=false",
		"--kube-api-qps=100", // default 20: startup (one token per controller) is throttled
		"--kube-api-burst=200",
		"--profiling=false",
	); err != nil {
		return cp.fail(err)
	}

	restCfg := &rest.Config{
		Host:            server,
		TLSClientConfig: rest.TLSClientConfig{CAFile: p.CACert, CertFile: p.AdminCert, KeyFile: p.AdminKey},
		QPS:             100,
		Burst:           200,
		UserAgent:       "controlplane",
	}
	// Abort the CRD installation as soon as a component dies.
	ctx, cancelStage := context.WithCancelCause(ctx)
	defer cancelStage(nil)
	go func() {
		select {
		case <-cp.dead:
			cancelStage(fmt.Errorf("%s exited", cp.exited().name))
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	var crdErr, kcmErr error
	var crdNames []string
	wg.Add(2)
	go func() {
		defer wg.Done()
		if len(o.crds) > 0 {
			t := time.Now()
			crdNames, crdErr = installCRDs(ctx, restCfg, o.crds)
			if crdErr == nil {
				logf("%d CRDs applied and Established in %.2fs", len(crdNames), time.Since(t).Seconds())
			}
		}
	}()
	go func() {
		defer wg.Done()
		kcmErr = cp.waitKCM(ctx, restCfg, kcmPort, adminTLS)
	}()
	wg.Wait()
	if crdErr != nil {
		return cp.fail(fmt.Errorf("installing CRDs: %w", crdErr))
	}
	if kcmErr != nil {
		return cp.fail(kcmErr)
	}

	nodeFields := ""
	if withNode {
		if err := cp.startNode(ctx, runCtx, p, server, restCfg); err != nil {
			return cp.fail(fmt.Errorf("node: %w", err))
		}
		nodeFields = fmt.Sprintf(" node=%s netns=%s node-ip=%s", nodeName, o.inNetns, nodeIP)
	}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, server, p.CACert, p.AdminCert, p.AdminKey, "dbaas-admin"); err != nil {
		return cp.fail(err)
	}
	fmt.Fprintf(os.Stdout, "READY kubeconfig=%s server=%s startup=%.2fs%s\n", kubeconfig, server, time.Since(startedAt).Seconds(), nodeFields)
	_ = os.Stdout.Sync()
	debug.FreeOSMemory() // the parsed CRDs are garbage now; keep the idle orchestrator small

	// Run until a signal / stdin EOF, or until a component dies.
	cancelTimeout()
	select {
	case <-runCtx.Done():
		if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
			logf("shutting down: %v", cause)
		} else {
			logf("shutting down (signal)")
		}
		return 0
	case <-cp.dead:
		c := cp.exited()
		logf("%s exited unexpectedly (%v); see %s", c.name, c.err, c.logPath)
		printTail(c.logPath, 20)
		return 1
	}
}

// fail reports a startup error, with the tail of the log of a component that
// exited, if any.
func (cp *controlPlane) fail(err error) int {
	logf("startup failed: %v", err)
	if c := cp.exited(); c != nil {
		logf("%s exited (%v); last lines of %s:", c.name, c.err, c.logPath)
		printTail(c.logPath, 30)
		cp.portConflict = logContains(c.logPath, c.logStart, "address already in use")
	}
	return 1
}

// logContains reports whether the file, from offset start on (this run's
// output; logs are appended to), contains s within its last 64 KiB.
func logContains(path string, start int64, s string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size()-start > 64<<10 {
		start = st.Size() - 64<<10
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return false
	}
	data, _ := io.ReadAll(f)
	return strings.Contains(string(data), s)
}

// waitKCM waits until the controller manager answers /healthz and its
// service-account controller has created default/default (needed by the
// ServiceAccount admission plugin before any Pod can be created).
func (cp *controlPlane) waitKCM(ctx context.Context, cfg *rest.Config, port int, tlsCfg *tls.Config) error {
	t := time.Now()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	if err := cp.waitHTTP(ctx, "kube-controller-manager", client, fmt.Sprintf("https://127.0.0.1:%d/healthz", port)); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			logf("kube-controller-manager ready, default ServiceAccount exists (%.2fs)", time.Since(t).Seconds())
			return nil
		}
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			logf("waiting for default ServiceAccount: %v", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the default ServiceAccount (kube-controller-manager): %w", context.Cause(ctx))
		case <-cp.dead:
			return fmt.Errorf("%s exited", cp.exited().name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exited returns the first child that exited, or nil.
func (cp *controlPlane) exited() *child {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.firstExit
}

// waitHTTP polls url until it answers 200, the context ends, or a child exits.
func (cp *controlPlane) waitHTTP(ctx context.Context, name string, client *http.Client, url string) error {
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s (%s): %w (last: %s)", name, url, context.Cause(ctx), last)
		case <-cp.dead:
			return fmt.Errorf("%s exited while waiting for %s", cp.exited().name, name)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// start launches one component with its output in DIR/logs/<name>.log.
func (cp *controlPlane) start(name string, argv []string, flags ...string) error {
	logPath := filepath.Join(cp.dir, "logs", name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "==== %s %s %s\n", time.Now().Format(time.RFC3339), strings.Join(argv, " "), strings.Join(flags, " "))
	var logStart int64
	if st, err := logFile.Stat(); err == nil {
		logStart = st.Size()
	}
	cmd := exec.Command(argv[0], append(argv[1:], flags...)...)
	cmd.Stdin = nil
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig: syscall.SIGKILL, // never outlive the orchestrator
		Setpgid:   true,            // terminal ^C goes to us; we stop the children in order
	}
	if err := spawn(cmd); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, logStart: logStart, done: make(chan struct{})}
	cp.mu.Lock()
	cp.procs = append(cp.procs, c)
	cp.mu.Unlock()
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.done)
		cp.mu.Lock()
		if cp.firstExit == nil {
			cp.firstExit = c
			close(cp.dead)
		}
		cp.mu.Unlock()
	}()
	logf("started %s (pid %d), log: %s", name, cmd.Process.Pid, logPath)
	return nil
}

// shutdown stops the children in reverse start order: SIGTERM, then SIGKILL
// whatever is still running after the grace period (~5 s in total).
func (cp *controlPlane) shutdown() {
	cp.mu.Lock()
	procs := append([]*child(nil), cp.procs...)
	cp.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	stopGroup := func(group []*child, until time.Time) {
		for _, c := range group {
			select {
			case <-c.done:
			default:
				_ = c.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, c := range group {
			select {
			case <-c.done:
			case <-time.After(time.Until(until)):
				logf("%s did not stop in time, killing it", c.name)
				_ = c.cmd.Process.Kill()
				<-c.done
			}
		}
	}
	var etcd, others []*child
	for _, c := range procs {
		if c.name == "etcd" {
			etcd = append(etcd, c)
		} else {
			others = append(others, c)
		}
	}
	// API clients first (so that etcd sees clean disconnects), then etcd.
	stopGroup(others, deadline.Add(-1500*time.Millisecond))
	stopGroup(etcd, deadline)
}

// spawn starts every child from one goroutine locked to its own OS thread that
// never exits: Pdeathsig fires when the *thread* that forked the child dies,
// so forking from an arbitrary (possibly short-lived) runtime thread could kill
// children early.
var (
	spawnOnce sync.Once
	spawnCh   = make(chan spawnReq)
)

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for req := range spawnCh {
				req.res <- req.cmd.Start()
			}
		}()
	})
	res := make(chan error)
	spawnCh <- spawnReq{cmd: cmd, res: res}
	return <-res
}

// resolveBinaries returns the argv prefix of each component: the binaries of
// $KUBEBUILDER_ASSETS when it holds etcd and kube-apiserver (and optionally
// kube-controller-manager), otherwise this executable with a subcommand.
func resolveBinaries() map[string][]string {
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	bins := map[string][]string{
		"etcd":                    {self, "etcd"},
		"kube-apiserver":          {self, "kube-apiserver"},
		"kube-controller-manager": {self, "kube-controller-manager"},
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return bins
	}
	isExec := func(n string) bool {
		st, err := os.Stat(filepath.Join(assets, n))
		return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
	}
	if !isExec("etcd") || !isExec("kube-apiserver") {
		logf("KUBEBUILDER_ASSETS=%s has no etcd + kube-apiserver binaries; using the embedded components", assets)
		return bins
	}
	for _, n := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if isExec(n) {
			bins[n] = []string{filepath.Join(assets, n)}
			logf("using %s from KUBEBUILDER_ASSETS", bins[n][0])
		}
	}
	return bins
}

// freePorts reserves n distinct free loopback ports (listen on 127.0.0.1:0,
// read the port, close).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// writeKubeconfig writes (atomically) a kubeconfig with embedded CA and client
// certificate data and a single context named "dbaas-local".
func writeKubeconfig(path, server, caFile, certFile, keyFile, user string) error {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[contextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = contextName
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func printTail(path string, n int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	for _, l := range lines {
		fmt.Fprintf(os.Stderr, "  | %s\n", l)
	}
}

// processStartTime returns when this process was started (from /proc, 10 ms
// resolution), falling back to now.
func processStartTime() time.Time {
	now := time.Now()
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return now
	}
	// Field 22 (starttime, clock ticks since boot) comes after the ")" that closes comm.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return now
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return now
	}
	ticks, err := strconv.ParseFloat(fields[19], 64)
	if err != nil {
		return now
	}
	uptimeData, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return now
	}
	uf := strings.Fields(string(uptimeData))
	if len(uf) == 0 {
		return now
	}
	uptime, err := strconv.ParseFloat(uf[0], 64)
	if err != nil {
		return now
	}
	const clkTck = 100 // USER_HZ on Linux
	age := time.Duration((uptime - ticks/clkTck) * float64(time.Second))
	if age < 0 || age > time.Hour {
		return now
	}
	return now.Add(-age)
}
