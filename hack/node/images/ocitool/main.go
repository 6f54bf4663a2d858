// ocitool turns a root filesystem directory into a single-layer OCI image
// archive (an OCI image layout packed in a tar file) that
// `ctr -n k8s.io images import` accepts and names, and inspects such
// archives. Standard library only: build.sh must work with nothing but the Go
// toolchain and Debian packages (no registry, no module proxy needed).
//
//	ocitool build --rootfs DIR --name REF --out FILE [--entrypoint JSON] [--cmd JSON]
//	              [--env K=V]... [--user U] [--workdir DIR] [--label K=V]...
//	              [--exclude REL]... [--mtime UNIX] [--arch amd64]
//	ocitool inspect FILE        # names, platform and config of an archive, as JSON
//	ocitool check-static FILE   # exit 1 unless FILE is a statically linked ELF binary
//
// The layer keeps what the rootfs holds: ownership (numeric uid/gid, no name
// lookups: the host's /etc/passwd is not the image's), permission bits with
// setuid/setgid/sticky, symlinks, hardlinks (as tar hardlinks) and the
// security.capability xattr. Device nodes and sockets are left out (the
// container runtime creates /dev). Entries are sorted and every mtime is the
// --mtime value, so the same rootfs always gives the same digests.
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"

	// containerd (ctr images import, the CRI) names an imported image after
	// this annotation of its index.json entry; other OCI tools read the
	// standard ref.name one, which by convention holds the tag only.
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = cmdBuild(os.Args[2:])
	case "inspect":
		err = cmdInspect(os.Args[2:])
	case "check-static":
		err = cmdCheckStatic(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ocitool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ocitool build --rootfs DIR --name REF --out FILE [options] | inspect FILE | check-static FILE")
	os.Exit(2)
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// BuildOptions describes one image.
type BuildOptions struct {
	Rootfs     string
	Name       string // full reference, e.g. localhost/dbaas/pause:3.10
	Out        string
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	Labels     map[string]string
	Excludes   []string // paths relative to the rootfs, left out with their subtree
	Mtime      int64
	Arch       string
}

func cmdBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var o BuildOptions
	var entrypoint, cmd string
	var env, labels, excludes listFlag
	fs.StringVar(&o.Rootfs, "rootfs", "", "root filesystem directory")
	fs.StringVar(&o.Name, "name", "", "image reference (registry/repository:tag)")
	fs.StringVar(&o.Out, "out", "", "archive to write")
	fs.StringVar(&entrypoint, "entrypoint", "", "ENTRYPOINT as a JSON array")
	fs.StringVar(&cmd, "cmd", "", "CMD as a JSON array")
	fs.Var(&env, "env", "environment variable K=V (repeatable)")
	fs.StringVar(&o.User, "user", "", "USER (uid[:gid] or name)")
	fs.StringVar(&o.WorkingDir, "workdir", "", "WORKDIR")
	fs.Var(&labels, "label", "label K=V (repeatable)")
	fs.Var(&excludes, "exclude", "path relative to the rootfs to leave out (repeatable)")
	fs.Int64Var(&o.Mtime, "mtime", 0, "mtime of every entry and the config's created time (unix seconds)")
	fs.StringVar(&o.Arch, "arch", runtime.GOARCH, "image architecture")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.Rootfs == "" || o.Name == "" || o.Out == "" {
		return errors.New("--rootfs, --name and --out are required")
	}
	for _, j := range []struct {
		flag, val string
		dst       *[]string
	}{{"entrypoint", entrypoint, &o.Entrypoint}, {"cmd", cmd, &o.Cmd}} {
		if j.val == "" {
			continue
		}
		if err := json.Unmarshal([]byte(j.val), j.dst); err != nil {
			return fmt.Errorf("--%s must be a JSON array of strings: %w", j.flag, err)
		}
	}
	o.Env = env
	o.Excludes = excludes
	o.Labels = map[string]string{}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label %q is not K=V", l)
		}
		o.Labels[k] = v
	}
	for _, e := range env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("--env %q is not K=V", e)
		}
	}
	sum, err := Build(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ocitool: %s -> %s (manifest %s, layer %d bytes gzip / %d bytes tar, %d entries)\n",
		o.Name, o.Out, sum.ManifestDigest, sum.LayerSize, sum.TarSize, sum.Entries)
	return nil
}

// Summary reports what Build wrote.
type Summary struct {
	ManifestDigest string
	LayerSize      int64
	TarSize        int64
	Entries        int
}

// tagOf returns the tag of a reference such as localhost/dbaas/pause:3.10.
func tagOf(ref string) (string, error) {
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon <= slash || colon == len(ref)-1 {
		return "", fmt.Errorf("image name %q has no tag", ref)
	}
	if strings.Contains(ref, "@") {
		return "", fmt.Errorf("image name %q must not carry a digest", ref)
	}
	return ref[colon+1:], nil
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type containerConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

type imageConfig struct {
	Created      string          `json:"created"`
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Config       containerConfig `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		Created   string `json:"created"`
		CreatedBy string `json:"created_by"`
	} `json:"history"`
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Build writes the archive o.Out (atomically: a temporary file renamed into
// place, so an interrupted build never leaves a truncated archive behind).
func Build(o BuildOptions) (Summary, error) {
	var sum Summary
	tag, err := tagOf(o.Name)
	if err != nil {
		return sum, err
	}
	if st, err := os.Stat(o.Rootfs); err != nil || !st.IsDir() {
		return sum, fmt.Errorf("rootfs %q is not a directory", o.Rootfs)
	}
	mtime := time.Unix(o.Mtime, 0).UTC()
	outDir := filepath.Dir(o.Out)

	// 1. The layer: tar of the rootfs -> gzip -> temporary blob file, hashing
	// the tar stream (diff_id) and the gzip stream (blob digest) on the way.
	layerFile, err := os.CreateTemp(outDir, ".ocitool-layer-*")
	if err != nil {
		return sum, err
	}
	defer os.Remove(layerFile.Name())
	defer layerFile.Close()
	blobHash, diffHash := sha256.New(), sha256.New()
	buf := bufio.NewWriterSize(layerFile, 1<<20)
	gzCount := &countingWriter{w: io.MultiWriter(buf, blobHash)}
	gz, err := gzip.NewWriterLevel(gzCount, gzip.DefaultCompression)
	if err != nil {
		return sum, err
	}
	tarCount := &countingWriter{w: io.MultiWriter(gz, diffHash)}
	lw := &layerWriter{
		tw:       tar.NewWriter(tarCount),
		root:     o.Rootfs,
		mtime:    mtime,
		links:    map[[2]uint64]string{},
		excludes: map[string]bool{},
	}
	for _, e := range o.Excludes {
		lw.excludes[strings.Trim(path.Clean("/"+e), "/")] = true
	}
	if err := lw.walk(""); err != nil {
		return sum, err
	}
	if err := lw.tw.Close(); err != nil {
		return sum, err
	}
	if err := gz.Close(); err != nil {
		return sum, err
	}
	if err := buf.Flush(); err != nil {
		return sum, err
	}
	if lw.skipped > 0 {
		fmt.Fprintf(os.Stderr, "ocitool: left out %d device node(s)/socket(s) (the runtime provides /dev)\n", lw.skipped)
	}
	layer := descriptor{MediaType: mediaTypeLayerGz, Digest: digestOf(blobHash), Size: gzCount.n}

	// 2. Config and manifest.
	var cfg imageConfig
	cfg.Created = mtime.Format(time.RFC3339)
	cfg.Architecture = o.Arch
	cfg.OS = "linux"
	cfg.Config = containerConfig{
		User: o.User, Env: o.Env, Entrypoint: o.Entrypoint, Cmd: o.Cmd,
		WorkingDir: o.WorkingDir, Labels: o.Labels,
	}
	if len(cfg.Config.Labels) == 0 {
		cfg.Config.Labels = nil
	}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{digestOf(diffHash)}
	cfg.History = append(cfg.History, struct {
		Created   string `json:"created"`
		CreatedBy string `json:"created_by"`
	}{cfg.Created, "dbaas-operator hack/node/images/ocitool build (rootfs directory)"})
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return sum, err
	}
	cfgDesc := descriptor{MediaType: mediaTypeConfig, Digest: digestBytes(cfgJSON), Size: int64(len(cfgJSON))}
	man := manifest{SchemaVersion: 2, MediaType: mediaTypeManifest, Config: cfgDesc, Layers: []descriptor{layer}}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return sum, err
	}
	manDesc := descriptor{
		MediaType: mediaTypeManifest, Digest: digestBytes(manJSON), Size: int64(len(manJSON)),
		Platform: &platform{Architecture: o.Arch, OS: "linux"},
		Annotations: map[string]string{
			annotationContainerdName: o.Name,
			annotationRefName:        tag,
		},
	}
	idxJSON, err := json.Marshal(index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{manDesc}})
	if err != nil {
		return sum, err
	}

	// 3. The archive: oci-layout, index.json, then the blobs.
	out, err := os.CreateTemp(outDir, ".ocitool-out-*")
	if err != nil {
		return sum, err
	}
	defer os.Remove(out.Name()) // no-op once renamed
	defer out.Close()
	ow := bufio.NewWriterSize(out, 1<<20)
	tw := tar.NewWriter(ow)
	hdr := func(name string, mode int64, size int64, typ byte) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Size: size, Typeflag: typ, ModTime: mtime, Format: tar.FormatPAX}
	}
	addBytes := func(name string, data []byte) error {
		if err := tw.WriteHeader(hdr(name, 0o644, int64(len(data)), tar.TypeReg)); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := addBytes("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return sum, err
	}
	if err := addBytes("index.json", idxJSON); err != nil {
		return sum, err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(hdr(d, 0o755, 0, tar.TypeDir)); err != nil {
			return sum, err
		}
	}
	blobName := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	if err := addBytes(blobName(manDesc.Digest), manJSON); err != nil {
		return sum, err
	}
	if err := addBytes(blobName(cfgDesc.Digest), cfgJSON); err != nil {
		return sum, err
	}
	if err := tw.WriteHeader(hdr(blobName(layer.Digest), 0o644, layer.Size, tar.TypeReg)); err != nil {
		return sum, err
	}
	if _, err := layerFile.Seek(0, io.SeekStart); err != nil {
		return sum, err
	}
	if n, err := io.Copy(tw, layerFile); err != nil {
		return sum, err
	} else if n != layer.Size {
		return sum, fmt.Errorf("layer blob: copied %d bytes, expected %d", n, layer.Size)
	}
	if err := tw.Close(); err != nil {
		return sum, err
	}
	if err := ow.Flush(); err != nil {
		return sum, err
	}
	if err := out.Chmod(0o644); err != nil {
		return sum, err
	}
	if err := out.Sync(); err != nil {
		return sum, err
	}
	if err := out.Close(); err != nil {
		return sum, err
	}
	if err := os.Rename(out.Name(), o.Out); err != nil {
		return sum, err
	}
	return Summary{ManifestDigest: manDesc.Digest, LayerSize: layer.Size, TarSize: tarCount.n, Entries: lw.entries}, nil
}

func digestBytes(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

type layerWriter struct {
	tw       *tar.Writer
	root     string
	mtime    time.Time
	links    map[[2]uint64]string // (dev, inode) -> first path written, for hardlinks
	excludes map[string]bool
	entries  int
	skipped  int
}

// walk writes the entries below rel ("" is the rootfs itself, which gets no
// entry of its own), in name order (os.ReadDir sorts).
func (w *layerWriter) walk(rel string) error {
	entries, err := os.ReadDir(filepath.Join(w.root, rel))
	if err != nil {
		return err
	}
	for _, e := range entries {
		r := path.Join(rel, e.Name())
		if w.excludes[r] {
			continue
		}
		isDir, err := w.add(r)
		if err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
		if isDir {
			if err := w.walk(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// add writes one entry and reports whether it is a directory to descend into.
func (w *layerWriter) add(rel string) (bool, error) {
	full := filepath.Join(w.root, rel)
	var st syscall.Stat_t
	if err := syscall.Lstat(full, &st); err != nil {
		return false, err
	}
	h := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777), // permission bits + setuid/setgid/sticky
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: w.mtime,
	}
	var content *os.File
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		h.Typeflag = tar.TypeDir
		h.Name += "/"
	case syscall.S_IFREG:
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, seen := w.links[key]; seen && st.Nlink > 1 {
			h.Typeflag = tar.TypeLink
			h.Linkname = first
			break
		}
		if st.Nlink > 1 {
			w.links[key] = rel
		}
		h.Typeflag = tar.TypeReg
		h.Size = st.Size
		if caps, err := getxattr(full, "security.capability"); err != nil {
			return false, err
		} else if caps != nil {
			h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(caps)}
		}
		f, err := os.Open(full)
		if err != nil {
			return false, err
		}
		defer f.Close()
		content = f
	case syscall.S_IFLNK:
		target, err := os.Readlink(full)
		if err != nil {
			return false, err
		}
		h.Typeflag = tar.TypeSymlink
		h.Linkname = target
	case syscall.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	default: // character/block devices, sockets
		w.skipped++
		return false, nil
	}
	if err := w.tw.WriteHeader(h); err != nil {
		return false, err
	}
	w.entries++
	if content != nil {
		n, err := io.Copy(w.tw, content)
		if err != nil {
			return false, err
		}
		if n != h.Size {
			return false, fmt.Errorf("file changed while archiving (%d bytes read, %d expected)", n, h.Size)
		}
	}
	return h.Typeflag == tar.TypeDir, nil
}

// getxattr returns the value of attribute name of a regular file, or nil
// when the file has none (or the filesystem keeps no xattrs).
func getxattr(file, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := syscall.Getxattr(file, name, buf)
		switch {
		case err == nil:
			return buf[:n], nil
		case errors.Is(err, syscall.ENODATA), errors.Is(err, syscall.ENOTSUP):
			return nil, nil
		case errors.Is(err, syscall.ERANGE) && len(buf) < 1<<16:
			buf = make([]byte, len(buf)*4)
		default:
			return nil, fmt.Errorf("getxattr %s: %w", name, err)
		}
	}
}

// cmdInspect prints, for each image of an archive, its name, platform,
// digests, layer sizes and config (the JSON build.sh and verify.sh show).
func cmdInspect(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: ocitool inspect ARCHIVE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	small := map[string][]byte{} // JSON documents (index, manifests, configs)
	sizes := map[string]int64{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		sizes[h.Name] = h.Size
		if h.Typeflag == tar.TypeReg && h.Size <= 1<<20 {
			b, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			small[h.Name] = b
		}
	}
	var idx index
	if err := json.Unmarshal(small["index.json"], &idx); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	blob := func(d string) []byte { return small["blobs/sha256/"+strings.TrimPrefix(d, "sha256:")] }
	type report struct {
		Name           string          `json:"name"`
		RefName        string          `json:"refName"`
		Platform       *platform       `json:"platform,omitempty"`
		ManifestDigest string          `json:"manifestDigest"`
		LayerBytes     []int64         `json:"layerBytes"`
		Config         containerConfig `json:"config"`
	}
	var reports []report
	for _, m := range idx.Manifests {
		var man manifest
		if err := json.Unmarshal(blob(m.Digest), &man); err != nil {
			return fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
		var cfg imageConfig
		if err := json.Unmarshal(blob(man.Config.Digest), &cfg); err != nil {
			return fmt.Errorf("config %s: %w", man.Config.Digest, err)
		}
		r := report{Name: m.Annotations[annotationContainerdName], RefName: m.Annotations[annotationRefName],
			Platform: m.Platform, ManifestDigest: m.Digest, Config: cfg.Config}
		for _, l := range man.Layers {
			if got := sizes["blobs/sha256/"+strings.TrimPrefix(l.Digest, "sha256:")]; got != l.Size {
				return fmt.Errorf("layer %s: %d bytes in the archive, manifest says %d", l.Digest, got, l.Size)
			}
			r.LayerBytes = append(r.LayerBytes, l.Size)
		}
		reports = append(reports, r)
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].Name < reports[j].Name })
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(reports)
}

// cmdCheckStatic fails unless the file is an ELF executable with neither an
// interpreter nor needed shared libraries: the operator image has no libc.
func cmdCheckStatic(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: ocitool check-static FILE")
	}
	f, err := elf.Open(args[0])
	if err != nil {
		return fmt.Errorf("%s is not an ELF binary: %w", args[0], err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (has an ELF interpreter); build it with CGO_ENABLED=0", args[0])
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: reading its dynamic section: %w", args[0], err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v", args[0], libs)
	}
	if f.Machine != elfMachine() {
		return fmt.Errorf("%s is built for %v, this machine is %v", args[0], f.Machine, elfMachine())
	}
	fmt.Fprintf(os.Stderr, "ocitool: %s is a static %v executable\n", args[0], f.Machine)
	return nil
}

func elfMachine() elf.Machine {
	switch runtime.GOARCH {
	case "arm64":
		return elf.EM_AARCH64
	default:
		return elf.EM_X86_64
	}
}
