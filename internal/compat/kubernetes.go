package compat

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"upkeep/internal/spec"
)

// probe is a check a container probe can run: from inside the pod, on the
// pod's own address.
type probe struct {
	check   *spec.Check
	handler k8sProbeHandler
	port    int
}

// kubernetes writes <name>.yaml: the ConfigMaps (env_file, config/), the
// Deployment and, when the checks name ports, a Service.
func (x *exporter) kubernetes() ([]File, error) {
	s := x.s
	name := k8sName(s.Name)
	if name != s.Name {
		x.note("name", "written %q: Kubernetes names are DNS labels", name)
	}
	labels := map[string]string{"app.kubernetes.io/name": name}
	if s.Version != "" {
		labels["app.kubernetes.io/version"] = k8sLabelValue(s.Version)
	}
	meta := func(n string) k8sObjectMeta {
		return k8sObjectMeta{Name: n, Labels: labels,
			Annotations: map[string]string{"upkeep/exported-from": x.hostPath(s.File)}}
	}
	image := s.Name + ":latest"
	if s.Version != "" {
		image = s.Name + ":" + s.Version
	}
	x.note("image", "upkeep runs programs from the host; build the image %s with them and %s in it", image, x.hostPath(s.Dir))

	c := k8sContainer{
		Name:       name,
		Image:      image,
		Command:    k8sEscape(x.argv()),
		WorkingDir: x.hostPath(s.Directory),
	}
	env := x.env()
	for _, k := range sortedKeys(env) {
		c.Env = append(c.Env, k8sEnvVar{Name: k, Value: env[k]})
	}
	var objects []any
	if s.EnvFile != "" {
		vars, err := spec.ReadEnvFile(s.EnvFile)
		if err != nil {
			x.note("env_file", "cannot be read (%v); not exported", err)
		} else {
			cm := &k8sConfigMap{k8sTypeMeta: k8sTypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, Metadata: meta(name + "-env"), Data: vars}
			objects = append(objects, cm)
			c.EnvFrom = []k8sEnvFromSource{{ConfigMapRef: &k8sLocalObjectRef{Name: cm.Metadata.Name}}}
			x.note("env_file", "copied into ConfigMap %s as it is now; upkeep reads the file at every start", cm.Metadata.Name)
		}
	}
	pod := k8sPodSpec{TerminationGracePeriodSeconds: new(seconds(s.Stop.Timeout, 0))}
	if cfg := x.configFiles(); len(cfg) > 0 {
		cm := &k8sConfigMap{k8sTypeMeta: k8sTypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, Metadata: meta(name + "-config")}
		used := map[string]bool{}
		total := 0
		for _, f := range cfg {
			key := configKey(f.target, used)
			total += len(f.data)
			if utf8.Valid(f.data) {
				if cm.Data == nil {
					cm.Data = map[string]string{}
				}
				cm.Data[key] = string(f.data)
			} else {
				if cm.BinaryData == nil {
					cm.BinaryData = map[string][]byte{}
				}
				cm.BinaryData[key] = f.data
			}
			c.VolumeMounts = append(c.VolumeMounts, k8sVolumeMount{Name: "config", MountPath: f.target, SubPath: key, ReadOnly: true})
		}
		if total > 1<<20 {
			x.note("config/", "%d bytes: more than a ConfigMap holds (1 MiB)", total)
		}
		pod.Volumes = []k8sVolume{{Name: "config", ConfigMap: &k8sLocalObjectRef{Name: cm.Metadata.Name}}}
		objects = append(objects, cm)
	}
	x.k8sSecurity(&c)
	ports := x.k8sProbes(&c)
	x.k8sResources(&c)
	if len(s.StopCommand) > 0 {
		c.Lifecycle = &k8sLifecycle{PreStop: &k8sProbeHandler{Exec: &k8sExecAction{Command: k8sEscape(s.StopCommand)}}}
		x.note("stop_command", "runs as a preStop hook, and the kubelet still sends SIGTERM after it")
	}
	if sig := strings.TrimPrefix(strings.ToUpper(s.Stop.Signal), "SIG"); sig != "TERM" && sig != "15" {
		x.note("stop.signal", "the kubelet sends SIGTERM; set STOPSIGNAL %s in the image", sig)
	}
	x.k8sNotes()

	replicas := int32(1)
	if !s.Autostart {
		replicas = 0
		x.note("autostart", "false: replicas = 0; scale it up to start it")
	}
	pod.Containers = []k8sContainer{c}
	dep := &k8sDeployment{
		k8sTypeMeta: k8sTypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		Metadata:    meta(name),
		Spec: k8sDeploymentSpec{
			Replicas: &replicas,
			Selector: &k8sLabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": name}},
			// One process at a time, as on the host: the old pod stops
			// before the new one starts (ports, pid files, data).
			Strategy: k8sStrategy{Type: "Recreate"},
			Template: k8sPodTemplateSpec{Metadata: k8sObjectMeta{Labels: labels}, Spec: pod},
		},
	}
	objects = append(objects, dep)
	if len(ports) > 0 {
		svc := &k8sService{k8sTypeMeta: k8sTypeMeta{APIVersion: "v1", Kind: "Service"}, Metadata: meta(name),
			Spec: k8sServiceSpec{Selector: map[string]string{"app.kubernetes.io/name": name}}}
		for _, p := range ports {
			svc.Spec.Ports = append(svc.Spec.Ports, k8sServicePort{Name: portName(p), Port: int32(p), TargetPort: int32(p), Protocol: "TCP"})
		}
		objects = append(objects, svc)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# Exported by `upkeep export kubernetes` from %s\n", x.hostPath(s.File))
	for i, o := range objects {
		if i > 0 {
			out.WriteString("---\n")
		}
		data, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		out.Write(data)
	}
	return []File{{Name: s.Name + ".yaml", Data: out.Bytes()}}, nil
}

var k8sBad = regexp.MustCompile(`[^a-z0-9-]+`)

// k8sName makes a DNS-1123 label of a service name ('_' and '.' are not
// allowed in one).
func k8sName(n string) string {
	n = strings.Trim(k8sBad.ReplaceAllString(strings.ToLower(n), "-"), "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		n = "svc-" + n // a Service name must start with a letter
	}
	return n
}

var labelBad = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func k8sLabelValue(v string) string {
	v = strings.Trim(labelBad.ReplaceAllString(v, "-"), "-._")
	if len(v) > 63 {
		v = strings.TrimRight(v[:63], "-._")
	}
	return v
}

var keyBad = regexp.MustCompile(`[^-._a-zA-Z0-9]+`)

// configKey names a config/ file inside its ConfigMap: its target path,
// with / as _ (keys are one path element).
func configKey(target string, used map[string]bool) string {
	k := keyBad.ReplaceAllString(strings.ReplaceAll(strings.TrimPrefix(target, "/"), "/", "_"), "_")
	base := k
	for i := 2; used[k]; i++ {
		k = base + "-" + strconv.Itoa(i)
	}
	used[k] = true
	return k
}

func portName(p int) string { return "port-" + strconv.Itoa(p) }

// local reports whether a check's host is the service's own machine, which
// in a pod is the pod.
func local(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// k8sProbes turns checks into the container's probes: readiness from the
// first check a probe can run (upkeep's "running" waits for every check),
// liveness and a startup probe (upkeep's grace) from the first that
// restarts. It returns the ports the checks name.
func (x *exporter) k8sProbes(c *k8sContainer) []int {
	var probes []probe
	var ports []int
	for i := range x.s.Checks {
		chk := &x.s.Checks[i]
		p, ok := x.k8sHandler(chk)
		if !ok {
			continue
		}
		probes = append(probes, p)
		if p.port > 0 && !contains(ports, p.port) {
			ports = append(ports, p.port)
			c.Ports = append(c.Ports, k8sContainerPort{Name: portName(p.port), ContainerPort: int32(p.port), Protocol: "TCP"})
		}
	}
	used := map[*spec.Check]bool{}
	for i := range probes {
		p := &probes[i]
		if c.ReadinessProbe == nil {
			c.ReadinessProbe = newK8sProbe(p, int32(p.check.Recover))
			used[p.check] = true
		}
		if c.LivenessProbe == nil && p.check.Then == "restart" {
			if p.check.Recover > 1 {
				x.note("check "+p.check.Name, "recover = %d: a liveness probe recovers after one success", p.check.Recover)
			}
			c.LivenessProbe = newK8sProbe(p, 1)
			if g := p.check.Grace.D(); g > 0 {
				// upkeep ignores failures for grace after a start, then
				// counts cycles of them: probe often until the first pass.
				sp := newK8sProbe(p, 1)
				sp.PeriodSeconds = min(sp.PeriodSeconds, 5)
				period := int64(sp.PeriodSeconds)
				sp.FailureThreshold = int32((seconds(p.check.Grace, 1)+period-1)/period) + int32(max(p.check.Cycles, 1))
				c.StartupProbe = sp
			}
			used[p.check] = true
		}
	}
	for i := range probes {
		if p := probes[i].check; !used[p] {
			x.checkNote(p, "a container has one readiness and one liveness probe")
		}
	}
	return ports
}

func newK8sProbe(p *probe, success int32) *k8sProbe {
	c := p.check
	pr := &k8sProbe{
		k8sProbeHandler:  p.handler,
		TimeoutSeconds:   int32(seconds(c.Timeout, 1)),
		PeriodSeconds:    int32(seconds(c.Interval, 1)),
		SuccessThreshold: max(success, 1),
		FailureThreshold: int32(max(c.Cycles, 1)),
	}
	return pr
}

// k8sHandler is how a probe runs a check, or false (with a note) when it
// cannot.
func (x *exporter) k8sHandler(c *spec.Check) (probe, bool) {
	p := probe{check: c}
	if c.Within > c.Cycles {
		x.note("check "+c.Name, "within = %d: a probe counts consecutive failures (failureThreshold = cycles)", c.Within)
	}
	if c.Then == "stop" || c.Then == "exec" {
		x.note("check "+c.Name, "then = %q: a probe can only restart the container or mark it unready; exported as a readiness probe at most", c.Then)
	}
	switch c.Type {
	case "http":
		u, err := url.Parse(c.URL)
		if err != nil {
			x.checkNote(c, "bad URL")
			return p, false
		}
		if !local(u.Hostname()) {
			x.checkNote(c, "it probes another host ("+u.Hostname()+"), not the container")
			return p, false
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		p.port, _ = strconv.Atoi(port)
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
		g := &k8sHTTPGetAction{Path: path, Port: int32(p.port), Scheme: "HTTP"}
		if u.Scheme == "https" {
			g.Scheme = "HTTPS"
		}
		if c.Host != "" {
			g.HTTPHeaders = []k8sHTTPHeader{{Name: "Host", Value: c.Host}}
		}
		if c.Method != "" && c.Method != "GET" {
			x.note("check "+c.Name, "method %s: a probe sends GET", c.Method)
		}
		if c.Status != "" && c.Status != "200-399" {
			x.note("check "+c.Name, "status %s: a probe accepts 200-399", c.Status)
		}
		if c.Body != "" {
			x.note("check "+c.Name, "body: a probe does not read the response")
		}
		p.handler.HTTPGet = g
	case "tcp":
		host, port, _ := net.SplitHostPort(c.Address)
		if !local(host) {
			x.checkNote(c, "it probes another host ("+host+"), not the container")
			return p, false
		}
		p.port, _ = strconv.Atoi(port)
		p.handler.TCPSocket = &k8sTCPSocketAction{Port: int32(p.port)}
		if c.Send != "" || c.Expect != "" {
			x.note("check "+c.Name, "send/expect: a TCP probe only connects")
		}
	case "exec":
		p.handler.Exec = &k8sExecAction{Command: k8sEscape(c.Command)}
	case "unix":
		x.checkNote(c, "a probe cannot connect to a unix socket (an exec probe with a client can)")
		return p, false
	default:
		return p, false // resource checks: k8sResources
	}
	return p, true
}

// k8sResources turns a memory check that restarts into a memory limit:
// the kernel kills the container above it and the kubelet restarts it.
func (x *exporter) k8sResources(c *k8sContainer) {
	for i := range x.s.Checks {
		chk := &x.s.Checks[i]
		switch {
		case chk.Type == "memory" && chk.Then == "restart" && c.Resources == nil:
			q := k8sQuantity(int64(chk.Limit))
			c.Resources = &k8sResources{Limits: map[string]string{"memory": q}, Requests: map[string]string{"memory": q}}
			x.note("check "+chk.Name, "exported as a memory limit: the container is killed at once above it, not after %d check(s)", max(chk.Cycles, 1))
		case chk.Type == "cpu":
			x.checkNote(chk, "a CPU limit throttles the container; it does not restart it")
		case chk.Resource():
			x.checkNote(chk, "Kubernetes has no "+chk.Type+" limit that restarts a container")
		}
	}
}

// k8sSecurity sets runAsUser/runAsGroup, which want numbers: a name is
// looked up in the host's /etc/passwd and /etc/group (under the root).
func (x *exporter) k8sSecurity(c *k8sContainer) {
	s := x.s
	sc := &k8sSecurityContext{}
	x.k8sPrivileges(sc)
	if s.User != "" {
		uid, gid, ok := x.lookup("etc/passwd", s.User)
		if ok {
			sc.RunAsUser = new(uid)
			if s.Group == "" {
				sc.RunAsGroup = new(gid)
			}
		} else {
			x.note("user", "%q is not in the host's /etc/passwd; runAsUser needs a uid", s.User)
		}
	}
	if s.Group != "" {
		if gid, _, ok := x.lookup("etc/group", s.Group); ok {
			sc.RunAsGroup = new(gid)
		} else {
			x.note("group", "%q is not in the host's /etc/group; runAsGroup needs a gid", s.Group)
		}
	}
	if *sc != (k8sSecurityContext{}) {
		c.SecurityContext = sc
	}
}

// k8sPrivileges keeps what upkeep would give the process: the listed
// capabilities and no others (none for a service that is not root), and
// no privilege escalation where no_new_privileges holds. A container's
// runtime has no umask, rlimit or supplementary-group setting of its own.
func (x *exporter) k8sPrivileges(sc *k8sSecurityContext) {
	s := x.s
	root := s.User == "" || s.User == "root" || s.User == "0"
	if s.Capabilities != nil || !root {
		caps := &k8sCapabilities{Drop: []string{"ALL"}}
		for _, c := range s.Capabilities {
			caps.Add = append(caps.Add, strings.TrimPrefix(c, "CAP_"))
		}
		sc.Capabilities = caps
	}
	nnp := !root
	if s.NoNewPrivileges != nil {
		nnp = *s.NoNewPrivileges
	}
	if nnp {
		sc.AllowPrivilegeEscalation = new(false)
	}
	if s.Umask != "" && s.Umask != "0022" {
		x.note("umask", "%s: a container has no umask setting; set it in the image's entrypoint", s.Umask)
	}
	if len(s.Groups) > 0 {
		x.note("groups", "%s: supplementalGroups is the pod's securityContext, and wants gids", strings.Join(s.Groups, ", "))
	}
	if s.Limits != (spec.Limits{}) {
		x.note("limits", "a container's rlimits are the runtime's defaults; Kubernetes has no setting for them")
	}
}

// lookup finds a name (or takes a number) in a passwd or group file: the
// third field, and for passwd the fourth (the primary group).
func (x *exporter) lookup(file, name string) (int64, int64, bool) {
	if n, err := strconv.ParseInt(name, 10, 64); err == nil && n >= 0 {
		return n, n, true
	}
	f, err := os.Open(filepath.Join(x.root, file))
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) < 3 || fs[0] != name {
			continue
		}
		id, err := strconv.ParseInt(fs[2], 10, 64)
		if err != nil {
			return 0, 0, false
		}
		gid := id
		if len(fs) > 3 {
			if g, err := strconv.ParseInt(fs[3], 10, 64); err == nil {
				gid = g
			}
		}
		return id, gid, true
	}
	return 0, 0, false
}

// k8sNotes lists the settings a Deployment has no place for.
func (x *exporter) k8sNotes() {
	s := x.s
	def := spec.Defaults()
	if len(s.DependsOn) > 0 {
		x.note("depends_on", "Kubernetes starts pods in no order; an init container that waits for %s is the nearest thing", strings.Join(s.DependsOn, ", "))
	}
	if s.Restart.Policy != spec.Always {
		x.note("restart.policy", "%q: a Deployment always restarts its containers (a Job runs to completion)", s.Restart.Policy)
	}
	if s.Restart.Backoff != def.Restart.Backoff || s.Restart.MaxBackoff != def.Restart.MaxBackoff || s.Restart.StableAfter != def.Restart.StableAfter {
		x.note("restart.backoff", "the kubelet's crash-loop back-off (10s doubling to 5m) applies")
	}
	x.note("restart.limit", "a Deployment never gives up restarting; there is no limit of %d starts in %s", s.Restart.Limit, FormatDuration(s.Restart.Window.D()))
	if s.PIDFile != "" {
		x.note("pidfile", "a container's main process must stay in the foreground; run the program without forking")
	}
	if s.ReadyAfter != def.ReadyAfter && !s.HasChecks() {
		x.note("ready_after", "without a readiness probe a container is ready at once")
	}
	if s.Log != def.Log {
		x.note("log", "container output goes to the kubelet, which rotates it (containerLogMaxSize, containerLogMaxFiles)")
	}
	for _, lf := range s.LogFiles {
		x.note("log.file", "%s: nothing rotates a container's own files; have the program log to stdout, or rotate them in the image", lf.Path)
	}
}

// k8sEscape doubles the $ of $(VAR), which the kubelet would expand in a
// container's command; upkeep expands nothing.
func k8sEscape(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, "$(", "$$(")
	}
	return out
}
