package llm

import (
	"fmt"
	"net/url"
)

// AzurePath returns the upstream path and query for an endpoint on Azure
// OpenAI. Deployment-scoped endpoints (Spec.AzureOperation) map to
// /openai/deployments/{deployment}/{operation}?api-version={apiVersion}.
// An endpoint of Azure's v1 API (Spec.AzurePath, as Responses) takes the
// deployment name in the body's model field and rejects dated api-version
// values, so deployment and apiVersion are not used for it. Other endpoints
// give ErrUnsupportedEndpoint.
//
// The deployment is path-escaped; "." and ".." are refused because an
// upstream that resolves dot segments would route the request elsewhere.
func AzurePath(e Endpoint, deployment, apiVersion string) (string, error) {
	sp := e.Spec()
	if sp.AzurePath != "" {
		return sp.AzurePath, nil
	}
	op := sp.AzureOperation
	if op == "" {
		return "", fmt.Errorf("%w: %s on azure", ErrUnsupportedEndpoint, e)
	}
	if deployment == "" || deployment == "." || deployment == ".." {
		return "", ErrInvalidDeployment
	}
	if apiVersion == "" {
		return "", ErrMissingAPIVersion
	}
	return "/openai/deployments/" + url.PathEscape(deployment) + "/" + op +
		"?api-version=" + url.QueryEscape(apiVersion), nil
}
