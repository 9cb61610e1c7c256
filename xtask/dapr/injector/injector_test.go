// Package injector runs Dapr's own sidecar injector logic (pkg/injector/patcher)
// on the pod templates that spin-operator generated, for `cargo xtask k8s`.
//
// Input: $TODO_POD_TEMPLATES, a JSON array of {"name", "namespace", "template"}
// (a Deployment's spec.template). Output: $TODO_DAPRD_OUT, a JSON object from
// each name to the daprd container the injector adds to that pod. The settings
// are those of the Dapr Helm chart's defaults (control plane in dapr-system,
// mTLS on, the scheduler and placement services), as pod_patch.go sets them.
package injector

import (
	"encoding/json"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"

	injectorConsts "github.com/dapr/dapr/pkg/injector/consts"
	"github.com/dapr/dapr/pkg/injector/patcher"
)

const (
	controlPlane  = "dapr-system"
	clusterDomain = "cluster.local"
	sidecarImage  = "ghcr.io/dapr/daprd:1.18.3"
)

type podTemplate struct {
	Name      string                 `json:"name"`
	Namespace string                 `json:"namespace"`
	Template  corev1.PodTemplateSpec `json:"template"`
}

func TestInjectSidecars(t *testing.T) {
	in, out := os.Getenv("TODO_POD_TEMPLATES"), os.Getenv("TODO_DAPRD_OUT")
	if in == "" || out == "" {
		t.Fatal("run by `cargo xtask k8s`: set TODO_POD_TEMPLATES and TODO_DAPRD_OUT")
	}
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var templates []podTemplate
	if err := json.Unmarshal(raw, &templates); err != nil {
		t.Fatal(err)
	}
	if len(templates) == 0 {
		t.Fatal("no pod templates to inject")
	}
	daprd := map[string]corev1.Container{}
	for _, tpl := range templates {
		container, err := inject(tpl)
		if err != nil {
			t.Fatalf("%s: %v", tpl.Name, err)
		}
		if container == nil {
			t.Fatalf("%s: the injector adds no daprd container (is dapr.io/enabled \"true\"?)", tpl.Name)
		}
		daprd[tpl.Name] = *container
	}
	encoded, err := json.MarshalIndent(daprd, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, encoded, 0o644); err != nil {
		t.Fatal(err)
	}
}

// inject patches a pod made from the template as the injector's webhook does
// and returns the daprd container it added, if any.
func inject(tpl podTemplate) (*corev1.Container, error) {
	pod := &corev1.Pod{ObjectMeta: tpl.Template.ObjectMeta, Spec: tpl.Template.Spec}
	pod.Namespace = tpl.Namespace
	sidecar := patcher.NewSidecarConfig(pod)
	sidecar.Mode = injectorConsts.ModeKubernetes
	sidecar.Namespace = tpl.Namespace
	sidecar.MTLSEnabled = true
	sidecar.Identity = tpl.Namespace + ":" + pod.Spec.ServiceAccountName
	sidecar.OperatorAddress = patcher.ServiceAPI.Address(controlPlane, clusterDomain)
	sidecar.SentryAddress = patcher.ServiceSentry.Address(controlPlane, clusterDomain)
	sidecar.PlacementAddress = patcher.ServicePlacement.Address(controlPlane, clusterDomain)
	sidecar.ControlPlaneNamespace = controlPlane
	sidecar.ControlPlaneTrustDomain = "cluster.local"
	sidecar.SentrySPIFFEID = "spiffe://cluster.local/ns/dapr-system/dapr-sentry"
	sidecar.KubeClusterDomain = clusterDomain
	sidecar.SchedulerEnabled = true
	sidecar.SidecarImage = sidecarImage
	sidecar.SetFromPodAnnotations()
	patch, err := sidecar.GetPatch()
	if err != nil || len(patch) == 0 {
		return nil, err
	}
	patched, err := patcher.PatchPod(pod, patch)
	if err != nil {
		return nil, err
	}
	for i := range patched.Spec.Containers {
		if patched.Spec.Containers[i].Name == injectorConsts.SidecarContainerName {
			return &patched.Spec.Containers[i], nil
		}
	}
	return nil, nil
}
