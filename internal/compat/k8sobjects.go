package compat

import (
	"strconv"
)

// The Kubernetes objects the exporter writes, with only the fields it
// sets. They stand in for k8s.io/api's types, which would double the
// binary and the daemon's start-up memory for one subcommand: the field
// names and JSON tags are those of apps/v1 and core/v1, and a test decodes
// every manifest strictly into the upstream types (k8sobjects_test.go).
// sigs.k8s.io/yaml sorts the keys, so the order of the fields here does
// not show in the output.

type k8sTypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type k8sObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type k8sConfigMap struct {
	k8sTypeMeta
	Metadata   k8sObjectMeta     `json:"metadata"`
	Data       map[string]string `json:"data,omitempty"`
	BinaryData map[string][]byte `json:"binaryData,omitempty"`
}

type k8sDeployment struct {
	k8sTypeMeta
	Metadata k8sObjectMeta     `json:"metadata"`
	Spec     k8sDeploymentSpec `json:"spec"`
}

type k8sDeploymentSpec struct {
	Replicas *int32             `json:"replicas,omitempty"`
	Selector *k8sLabelSelector  `json:"selector,omitempty"`
	Strategy k8sStrategy        `json:"strategy"`
	Template k8sPodTemplateSpec `json:"template"`
}

type k8sLabelSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

type k8sStrategy struct {
	Type string `json:"type,omitempty"`
}

type k8sPodTemplateSpec struct {
	Metadata k8sObjectMeta `json:"metadata"`
	Spec     k8sPodSpec    `json:"spec"`
}

type k8sPodSpec struct {
	Volumes                       []k8sVolume    `json:"volumes,omitempty"`
	Containers                    []k8sContainer `json:"containers"`
	TerminationGracePeriodSeconds *int64         `json:"terminationGracePeriodSeconds,omitempty"`
}

type k8sVolume struct {
	Name      string             `json:"name"`
	ConfigMap *k8sLocalObjectRef `json:"configMap,omitempty"`
}

// k8sLocalObjectRef is a ConfigMapVolumeSource and a ConfigMapEnvSource
// as far as they are used here: the name of the ConfigMap.
type k8sLocalObjectRef struct {
	Name string `json:"name,omitempty"`
}

type k8sContainer struct {
	Name            string              `json:"name"`
	Image           string              `json:"image,omitempty"`
	Command         []string            `json:"command,omitempty"`
	WorkingDir      string              `json:"workingDir,omitempty"`
	Ports           []k8sContainerPort  `json:"ports,omitempty"`
	EnvFrom         []k8sEnvFromSource  `json:"envFrom,omitempty"`
	Env             []k8sEnvVar         `json:"env,omitempty"`
	Resources       *k8sResources       `json:"resources,omitempty"`
	VolumeMounts    []k8sVolumeMount    `json:"volumeMounts,omitempty"`
	LivenessProbe   *k8sProbe           `json:"livenessProbe,omitempty"`
	ReadinessProbe  *k8sProbe           `json:"readinessProbe,omitempty"`
	StartupProbe    *k8sProbe           `json:"startupProbe,omitempty"`
	Lifecycle       *k8sLifecycle       `json:"lifecycle,omitempty"`
	SecurityContext *k8sSecurityContext `json:"securityContext,omitempty"`
}

type k8sContainerPort struct {
	Name          string `json:"name,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}

type k8sEnvFromSource struct {
	ConfigMapRef *k8sLocalObjectRef `json:"configMapRef,omitempty"`
}

type k8sEnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// k8sResources holds quantities as their canonical strings (k8sQuantity).
type k8sResources struct {
	Limits   map[string]string `json:"limits,omitempty"`
	Requests map[string]string `json:"requests,omitempty"`
}

type k8sVolumeMount struct {
	Name      string `json:"name"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath,omitempty"`
}

// k8sProbe has the handler inline, as corev1.Probe embeds ProbeHandler.
type k8sProbe struct {
	k8sProbeHandler
	TimeoutSeconds   int32 `json:"timeoutSeconds,omitempty"`
	PeriodSeconds    int32 `json:"periodSeconds,omitempty"`
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
}

type k8sProbeHandler struct {
	Exec      *k8sExecAction      `json:"exec,omitempty"`
	HTTPGet   *k8sHTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket *k8sTCPSocketAction `json:"tcpSocket,omitempty"`
}

type k8sExecAction struct {
	Command []string `json:"command,omitempty"`
}

// Port is an IntOrString upstream; it is always a number here, which is
// how an IntOrString holding one is written.
type k8sHTTPGetAction struct {
	Path        string          `json:"path,omitempty"`
	Port        int32           `json:"port"`
	Scheme      string          `json:"scheme,omitempty"`
	HTTPHeaders []k8sHTTPHeader `json:"httpHeaders,omitempty"`
}

type k8sHTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type k8sTCPSocketAction struct {
	Port int32 `json:"port"`
}

type k8sLifecycle struct {
	PreStop *k8sProbeHandler `json:"preStop,omitempty"`
}

type k8sSecurityContext struct {
	RunAsUser                *int64           `json:"runAsUser,omitempty"`
	RunAsGroup               *int64           `json:"runAsGroup,omitempty"`
	AllowPrivilegeEscalation *bool            `json:"allowPrivilegeEscalation,omitempty"`
	Capabilities             *k8sCapabilities `json:"capabilities,omitempty"`
}

type k8sCapabilities struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

type k8sService struct {
	k8sTypeMeta
	Metadata k8sObjectMeta  `json:"metadata"`
	Spec     k8sServiceSpec `json:"spec"`
}

type k8sServiceSpec struct {
	Ports    []k8sServicePort  `json:"ports,omitempty"`
	Selector map[string]string `json:"selector,omitempty"`
}

type k8sServicePort struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Port       int32  `json:"port"`
	TargetPort int32  `json:"targetPort,omitempty"`
}

// k8sQuantity writes a byte count as resource.Quantity does for a
// BinarySI quantity (resource.NewQuantity(n, resource.BinarySI).String()):
// below 1024 in decimal SI ("500", "1k"), above with the largest binary
// suffix that divides it ("512Mi", "1536").
func k8sQuantity(n int64) string {
	if n > -1024 && n < 1024 {
		suffixes := []string{"", "k"}
		i := 0
		for n != 0 && n%1000 == 0 && i < len(suffixes)-1 {
			n /= 1000
			i++
		}
		return strconv.FormatInt(n, 10) + suffixes[i]
	}
	suffixes := []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	i := 0
	for n%1024 == 0 && i < len(suffixes)-1 {
		n /= 1024
		i++
	}
	return strconv.FormatInt(n, 10) + suffixes[i]
}
