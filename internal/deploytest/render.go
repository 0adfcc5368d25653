package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Shapes are the overlays under deploy/kubernetes/overlays, one per shape
// of Argus.
var Shapes = []string{"monolithic", "microservices"}

// RepoRoot returns the directory holding go.mod, searched upwards from the
// working directory (a test's is its package directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// RenderYAML builds the overlay of shape under root/deploy/kubernetes as
// `kubectl kustomize` would and returns the multi-document YAML.
func RenderYAML(root, shape string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, "deploy", "kubernetes", "overlays", shape))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", shape, err)
	}
	return m.AsYaml()
}

// Render builds the overlay of shape and decodes its objects, in the order
// kustomize emits them.
func Render(root, shape string) ([]*unstructured.Unstructured, error) {
	y, err := RenderYAML(root, shape)
	if err != nil {
		return nil, err
	}
	return DecodeYAML(y)
}

// DecodeYAML decodes a multi-document YAML stream into objects.
func DecodeYAML(y []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("decode rendered manifests: %w", err)
		}
		if obj != nil {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}
