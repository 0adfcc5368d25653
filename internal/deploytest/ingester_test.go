package deploytest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestRendered_Ingesters: every ingester keeps its WAL, data and tokens on a
// PVC, has longer to stop than it is given to flush, starts without waiting
// for its siblings, and is covered by a PDB that lets one ingester of the
// shape go, never two.
func TestRendered_Ingesters(t *testing.T) {
	for _, name := range Shapes {
		s := renderShape(t, name)
		ings := s.ingesters()
		require.NotEmpty(t, ings, name)
		for _, ss := range ings {
			where := name + ": StatefulSet " + ss.Name
			c := ss.Spec.Template.Spec.Containers[0]
			require.Equal(t, "3", flagValue(c.Args, "ingester.ring.replication-factor"), where)
			storage := flagValue(c.Args, "storage.path")
			require.NotEmpty(t, storage, where)
			m := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == storage })
			require.GreaterOrEqual(t, m, 0, "%s: nothing mounted at -storage.path %s", where, storage)
			require.True(t, slices.ContainsFunc(ss.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool {
				return p.Name == c.VolumeMounts[m].Name
			}), "%s: -storage.path is no PVC", where)
			require.Equal(t, storage+"/tokens", flagValue(c.Args, "ingester.ring.tokens-file-path"), where)
			require.Equal(t, appsv1.ParallelPodManagement, ss.Spec.PodManagementPolicy, where)

			flush, err := time.ParseDuration(flagValue(c.Args, "server.graceful-shutdown-timeout"))
			require.NoError(t, err, where)
			grace := time.Duration(*ss.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
			require.GreaterOrEqual(t, grace, flush+30*time.Second, "%s: the kubelet kills before the flush deadline", where)

			covering := 0
			for _, pdb := range s.pdbs {
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				require.NoError(t, err)
				if sel.Matches(labels.Set(ss.Spec.Template.Labels)) {
					covering++
					require.Nil(t, pdb.Spec.MinAvailable, where)
					require.NotNil(t, pdb.Spec.MaxUnavailable, where)
					require.Equal(t, 1, pdb.Spec.MaxUnavailable.IntValue(), "%s: PDB %s", where, pdb.Name)
					for _, other := range ings {
						require.True(t, sel.Matches(labels.Set(other.Spec.Template.Labels)),
							"%s: PDB %s does not also cover %s, so two ingesters could be down at once", where, pdb.Name, other.Name)
					}
				}
			}
			require.Equal(t, 1, covering, "%s: PDBs covering it", where)
		}
	}
}

// TestRendered_Monolithic: one StatefulSet of -target=all, at least RF
// replicas.
func TestRendered_Monolithic(t *testing.T) {
	s := renderShape(t, "monolithic")
	require.Len(t, s.statefulSets, 1)
	require.Empty(t, s.deployments)
	ss := s.statefulSets[0]
	require.Equal(t, "all", flagValue(ss.Spec.Template.Spec.Containers[0].Args, "target"))
	require.GreaterOrEqual(t, *ss.Spec.Replicas, int32(3))
	svc := s.service("argus")
	require.NotNil(t, svc)
	require.True(t, selects(svc.Spec.Selector, ss.Spec.Template.Labels))
}

// TestRendered_MicroservicesZones: three ingester StatefulSets, one per
// zone, each with its zone flag and label, and a required anti-affinity that
// keeps it off any node running an ingester of another zone (and only
// those); every role that picks replicas is zone-aware.
func TestRendered_MicroservicesZones(t *testing.T) {
	s := renderShape(t, "microservices")
	ings := s.ingesters()
	require.Len(t, ings, 3)
	zones := map[string]*appsv1.StatefulSet{}
	for _, ss := range ings {
		args := ss.Spec.Template.Spec.Containers[0].Args
		require.Equal(t, "ingester", flagValue(args, "target"), ss.Name)
		require.Equal(t, "true", flagValue(args, "ingester.ring.zone-awareness-enabled"), ss.Name)
		zone := flagValue(args, "ingester.ring.instance-availability-zone")
		require.NotEmpty(t, zone, ss.Name)
		require.Equal(t, zone, ss.Spec.Template.Labels["argus.io/zone"], ss.Name)
		require.Equal(t, zone, ss.Spec.Selector.MatchLabels["argus.io/zone"], ss.Name)
		require.NotContains(t, zones, zone)
		zones[zone] = ss
	}
	for zone, ss := range zones {
		aff := ss.Spec.Template.Spec.Affinity
		require.NotNil(t, aff, ss.Name)
		require.NotNil(t, aff.PodAntiAffinity, ss.Name)
		terms := aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution
		for other, oss := range zones {
			repelled := slices.ContainsFunc(terms, func(term corev1.PodAffinityTerm) bool {
				sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
				require.NoError(t, err)
				return term.TopologyKey == "kubernetes.io/hostname" && sel.Matches(labels.Set(oss.Spec.Template.Labels))
			})
			require.Equal(t, other != zone, repelled, "%s on a node with an ingester of %s", ss.Name, other)
		}
	}
	for _, d := range s.deployments {
		args := d.Spec.Template.Spec.Containers[0].Args
		switch flagValue(args, "target") {
		case "distributor", "querier", "ruler":
			require.Equal(t, "true", flagValue(args, "ingester.ring.zone-awareness-enabled"), d.Name)
			require.Empty(t, flagValue(args, "ingester.ring.instance-availability-zone"), "%s: only ingesters have a zone", d.Name)
		}
	}
}

// TestRendered_MicroservicesRoles: a Deployment per stateless role, the
// distributors scaled by an HPA, and the Services clients use select them.
func TestRendered_MicroservicesRoles(t *testing.T) {
	s := renderShape(t, "microservices")
	byRole := map[string]*appsv1.Deployment{}
	for _, d := range s.deployments {
		byRole[flagValue(d.Spec.Template.Spec.Containers[0].Args, "target")] = d
	}
	for _, role := range []string{"distributor", "querier", "scraper", "ruler"} {
		require.Contains(t, byRole, role)
	}
	require.Len(t, s.hpas, 1)
	hpa := s.hpas[0]
	require.Equal(t, "Deployment", hpa.Spec.ScaleTargetRef.Kind)
	require.Equal(t, byRole["distributor"].Name, hpa.Spec.ScaleTargetRef.Name)
	require.GreaterOrEqual(t, *hpa.Spec.MinReplicas, int32(2))
	for svc, role := range map[string]string{"argus-distributor": "distributor", "argus-querier": "querier"} {
		require.NotNil(t, s.service(svc), svc)
		require.True(t, selects(s.service(svc).Spec.Selector, byRole[role].Spec.Template.Labels), svc)
	}
	require.Equal(t, "http://argus-distributor:8080/api/v1/push",
		flagValue(byRole["scraper"].Spec.Template.Spec.Containers[0].Args, "scraper.remote-write-url"))
}

// TestRendered_RulersShareOneStore: the rulers share their rule store only
// through -ruler.storage-path (ruler/DESIGN.md), so in every shape it is a
// PersistentVolumeClaim, and one that several rulers can mount when more
// than one runs (else rules uploaded to one would be missing on the others).
func TestRendered_RulersShareOneStore(t *testing.T) {
	s := renderShape(t, "microservices")
	for _, d := range s.deployments {
		pod := d.Spec.Template.Spec
		args := pod.Containers[0].Args
		if flagValue(args, "target") != "ruler" {
			continue
		}
		store := flagValue(args, "ruler.storage-path")
		require.NotEmpty(t, store, "%s: -ruler.storage-path", d.Name)
		var volume string
		for _, m := range pod.Containers[0].VolumeMounts {
			if m.MountPath == store {
				volume = m.Name
			}
		}
		require.NotEmpty(t, volume, "%s: nothing mounted at %s", d.Name, store)
		var claim string
		for _, v := range pod.Volumes {
			if v.Name == volume && v.PersistentVolumeClaim != nil {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
		require.NotEmpty(t, claim, "%s: %s is not a PersistentVolumeClaim", d.Name, volume)
		var pvc *corev1.PersistentVolumeClaim
		for _, o := range s.objects {
			if o.GetKind() == "PersistentVolumeClaim" && o.GetName() == claim {
				pvc = convert[corev1.PersistentVolumeClaim](t, o)
			}
		}
		require.NotNil(t, pvc, "claim %s", claim)
		if d.Spec.Replicas == nil || *d.Spec.Replicas > 1 {
			require.Contains(t, pvc.Spec.AccessModes, corev1.ReadWriteMany, "%s: several rulers need one shared store", d.Name)
		} else {
			require.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type, "%s: a ReadWriteOnce volume attaches to one pod at a time", d.Name)
		}
	}
}
