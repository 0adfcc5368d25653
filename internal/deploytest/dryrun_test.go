package deploytest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/restmapper"

	"github.com/argus-tsdb/argus/internal/kubetest"
)

// TestManifests_ServerSideDryRun applies every object of both shapes to a
// real kube-apiserver with a server-side dry run and strict field
// validation: the API server validates and defaults each object as it would
// on `kubectl apply --server-side`, and refuses an unknown or misplaced
// field, without persisting anything. The namespace is created for real
// first, as a dry-run object in a namespace that does not exist is refused.
func TestManifests_ServerSideDryRun(t *testing.T) {
	srv := kubetest.Start(t)
	ctx := context.Background()
	groups, err := restmapper.GetAPIGroupResources(srv.Client.Discovery())
	require.NoError(t, err)
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	force := true
	for _, name := range Shapes {
		s := renderShape(t, name)
		for _, o := range s.objects {
			if ns := o.GetNamespace(); ns != "" {
				_, err := srv.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
				if err != nil {
					_, getErr := srv.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
					require.NoError(t, getErr, "create namespace %s: %v", ns, err)
				}
			}
		}
		for _, o := range s.objects {
			gvk := o.GroupVersionKind()
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			require.NoError(t, err, "%s: %s", name, gvk)
			body, err := json.Marshal(o.Object)
			require.NoError(t, err)
			res := srv.Dynamic.Resource(m.Resource)
			opts := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "argus-deploytest", Force: &force, FieldValidation: "Strict"}
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				_, err = res.Namespace(o.GetNamespace()).Patch(ctx, o.GetName(), types.ApplyPatchType, body, opts)
			} else {
				_, err = res.Patch(ctx, o.GetName(), types.ApplyPatchType, body, opts)
			}
			require.NoError(t, err, "%s: server-side dry run of %s %s/%s", name, gvk.Kind, o.GetNamespace(), o.GetName())
		}
		t.Logf("%s: %d objects accepted", name, len(s.objects))
	}

	// The same dry run refuses a field the API does not have: the check is
	// not vacuous.
	bad := renderShape(t, "microservices").deployments[0]
	obj := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": bad.Name, "namespace": bad.Namespace},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": bad.Spec.Selector.MatchLabels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": bad.Spec.Template.Labels},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "argus", "image": "argus", "readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/ready", "port": 8080}, "bogus": 1},
				}}},
			},
		},
	}
	body, err := json.Marshal(obj)
	require.NoError(t, err)
	_, err = srv.Dynamic.Resource(appsv1.SchemeGroupVersion.WithResource("deployments")).Namespace(bad.Namespace).Patch(ctx, bad.Name, types.ApplyPatchType, body,
		metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "argus-deploytest", Force: &force, FieldValidation: "Strict"})
	require.ErrorContains(t, err, "bogus")
}
