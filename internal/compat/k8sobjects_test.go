package compat

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"upkeep/internal/spec"
)

// The exporters write their own small structs, not k8s.io/api's or
// nomad/api's (see k8sobjects.go). These tests are the proof that what they
// write is what the upstream types read: every manifest is decoded
// strictly (an unknown or misspelt field fails) and a few values are
// checked on the other side. The upstream modules are linked into the
// tests only.

// exportHosts are the golden host and one more that reaches what the
// golden services do not: an exec liveness probe, an https probe, a
// ConfigMap with binary data, a numeric user and odd memory sizes.
func exportHosts(t *testing.T) []struct {
	root string
	h    *spec.Host
} {
	t.Helper()
	root, h := loadExportHost(t)
	extra := t.TempDir()
	www := filepath.Join(extra, spec.WWW)
	files := map[string]string{
		"odd/service.toml": `command = ["/usr/bin/odd", "$(NOT_EXPANDED)"]
user = "1234"
group = "50"
autostart = false

[[check]]
type = "exec"
command = ["/usr/bin/odd-check", "--quick"]
interval = "7s"
timeout = "2s"
cycles = 4
grace = "1m"
then = "restart"

[[check]]
type = "http"
url = "https://localhost:8443/ready"
then = "alert"

[[check]]
type = "memory"
max = "1000"
then = "restart"
`,
		"odd/config/etc/odd/key.bin":     "\xff\xfe\x00binary",
		"odd/config/etc/odd/plain.conf":  "a = 1\n",
		"half/service.toml":              "command = [\"/bin/half\"]\n\n[[check]]\ntype = \"memory\"\nmax = \"1536K\"\nthen = \"restart\"\n\n[[check]]\ntype = \"tcp\"\naddress = \"0.0.0.0:7000\"\n",
		"half/config/etc/half/half.conf": "x\n",
	}
	for name, data := range files {
		p := filepath.Join(www, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h2, err := spec.LoadHost(extra)
	if err != nil {
		t.Fatal(err)
	}
	for n, ps := range h2.Problems {
		t.Fatalf("%s: %v", n, ps)
	}
	return []struct {
		root string
		h    *spec.Host
	}{{root, h}, {extra, h2}}
}

// TestKubernetesStrict decodes every manifest into apps/v1 and core/v1
// with unknown fields rejected.
func TestKubernetesStrict(t *testing.T) {
	kinds := map[string]int{}
	for _, host := range exportHosts(t) {
		for _, name := range host.h.Names() {
			s := host.h.Services[name]
			files, _, err := Export(Kubernetes, host.root, s)
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range bytes.Split(files[0].Data, []byte("\n---\n")) {
				var tm struct{ Kind string }
				if err := yaml.Unmarshal(doc, &tm); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				kinds[tm.Kind]++
				switch tm.Kind {
				case "Deployment":
					var d appsv1.Deployment
					if err := yaml.UnmarshalStrict(doc, &d); err != nil {
						t.Fatalf("%s: Deployment: %v\n%s", name, err, doc)
					}
					checkDeployment(t, s, &d)
				case "Service":
					var svc corev1.Service
					if err := yaml.UnmarshalStrict(doc, &svc); err != nil {
						t.Fatalf("%s: Service: %v\n%s", name, err, doc)
					}
					if len(svc.Spec.Ports) == 0 || svc.Spec.Ports[0].TargetPort.IntValue() != int(svc.Spec.Ports[0].Port) ||
						svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP || svc.Spec.Selector["app.kubernetes.io/name"] != svc.Name {
						t.Errorf("%s: Service %+v", name, svc.Spec)
					}
				case "ConfigMap":
					var cm corev1.ConfigMap
					if err := yaml.UnmarshalStrict(doc, &cm); err != nil {
						t.Fatalf("%s: ConfigMap: %v\n%s", name, err, doc)
					}
					if len(cm.Data)+len(cm.BinaryData) == 0 || cm.Annotations["upkeep/exported-from"] != "/var/www/"+name+"/service.toml" {
						t.Errorf("%s: ConfigMap %+v", name, cm)
					}
					if name == "odd" && strings.HasSuffix(cm.Name, "-config") &&
						(string(cm.BinaryData["etc_odd_key.bin"]) != "\xff\xfe\x00binary" || cm.Data["etc_odd_plain.conf"] != "a = 1\n") {
						t.Errorf("odd: config files lost: %+v", cm)
					}
				default:
					t.Errorf("%s: kind %q in\n%s", name, tm.Kind, doc)
				}
			}
		}
	}
	if kinds["Deployment"] != 5 || kinds["Service"] == 0 || kinds["ConfigMap"] == 0 {
		t.Errorf("kinds decoded: %v", kinds)
	}
}

func checkDeployment(t *testing.T, s *spec.Service, d *appsv1.Deployment) {
	t.Helper()
	want := int32(1)
	if !s.Autostart {
		want = 0
	}
	if d.APIVersion != "apps/v1" || d.Spec.Replicas == nil || *d.Spec.Replicas != want || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("%s: deployment %+v", s.Name, d.Spec)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers", s.Name, len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	x := &exporter{s: s}
	if strings.Join(c.Command, "\x00") != strings.Join(k8sEscape(x.argv()), "\x00") {
		t.Errorf("%s: command %q", s.Name, c.Command)
	}
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g != seconds(s.Stop.Timeout, 0) {
		t.Errorf("%s: terminationGracePeriodSeconds %v", s.Name, g)
	}
	switch s.Name {
	case "api-app":
		p := c.LivenessProbe
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.IntValue() != 8080 || p.HTTPGet.Path != "/health?deep=1" || p.FailureThreshold != 3 {
			t.Errorf("api-app: liveness %+v", p)
		}
		if q := c.Resources.Limits[corev1.ResourceMemory]; q.Value() != 512<<20 {
			t.Errorf("api-app: memory limit %v", q.String())
		}
		if c.SecurityContext == nil || *c.SecurityContext.RunAsUser != 1001 {
			t.Errorf("api-app: securityContext %+v", c.SecurityContext)
		}
		if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/api-app/app.conf" || !c.VolumeMounts[0].ReadOnly {
			t.Errorf("api-app: volumeMounts %+v", c.VolumeMounts)
		}
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef.Name != "api-app-env" {
			t.Errorf("api-app: envFrom %+v", c.EnvFrom)
		}
	case "odd":
		if p := c.LivenessProbe; p == nil || p.Exec == nil || p.Exec.Command[0] != "/usr/bin/odd-check" || p.PeriodSeconds != 7 {
			t.Errorf("odd: liveness %+v", p)
		}
		if p := c.StartupProbe; p == nil || p.Exec == nil || p.FailureThreshold != 16 {
			t.Errorf("odd: startup %+v", p)
		}
		if c.Command[1] != "$$(NOT_EXPANDED)" {
			t.Errorf("odd: command %q", c.Command)
		}
		if q := c.Resources.Requests[corev1.ResourceMemory]; q.Value() != 1000 {
			t.Errorf("odd: memory request %v", q.String())
		}
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8443 {
			t.Errorf("odd: ports %+v", c.Ports)
		}
		if sc := c.SecurityContext; sc == nil || *sc.RunAsUser != 1234 || *sc.RunAsGroup != 50 {
			t.Errorf("odd: securityContext %+v", sc)
		}
	case "half":
		if p := c.ReadinessProbe; p == nil || p.TCPSocket == nil || p.TCPSocket.Port.IntValue() != 7000 {
			t.Errorf("half: readiness %+v", p)
		}
		if q := c.Resources.Limits[corev1.ResourceMemory]; q.Value() != 1536<<10 {
			t.Errorf("half: memory limit %v", q.String())
		}
	}
}

// TestK8sQuantity holds k8sQuantity to resource.Quantity's own String.
func TestK8sQuantity(t *testing.T) {
	vals := []int64{0, 1, 999, 1000, 1001, 1023, 1024, 1025, 1536, 2000, 3072, 1 << 20, 512 << 20, 1000000,
		1 << 30, 3 << 40, 5 << 50, 1 << 60, 7 << 60, -1, -1000, -1024, -2048, 1<<63 - 1}
	for i := int64(1); i < 5000; i += 7 {
		vals = append(vals, i, i*1000, i*1024, i*1024*1024)
	}
	for _, v := range vals {
		want := resource.NewQuantity(v, resource.BinarySI).String()
		if got := k8sQuantity(v); got != want {
			t.Errorf("k8sQuantity(%d) = %q, want %q", v, got, want)
		}
	}
}
