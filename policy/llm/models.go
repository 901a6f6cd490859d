package llm

import "time"

// ModelInfo is one entry of the model list Tollgate serves on GET /v1/models.
type ModelInfo struct {
	// ID is the model name clients send in requests.
	ID string
	// OwnedBy is OpenAI's owned_by field, such as "openai" or an org name.
	OwnedBy string
	// Created is the model's creation time in Unix seconds.
	Created int64
}

type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type openAIModelList struct {
	Object string        `json:"object"`
	Data   []openAIModel `json:"data"`
}

type anthropicModel struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

type anthropicModelList struct {
	Data    []anthropicModel `json:"data"`
	HasMore bool             `json:"has_more"`
	FirstID *string          `json:"first_id"`
	LastID  *string          `json:"last_id"`
}

// ModelsBody returns the GET /v1/models reply in the dialect's shape:
//
//	OpenAI:    {"object":"list","data":[{"id":...,"object":"model","created":...,"owned_by":...}]}
//	Anthropic: {"data":[{"type":"model","id":...,"display_name":...,"created_at":...}],
//	            "has_more":false,"first_id":...,"last_id":...}
//
// The list is always complete (has_more is false). Anthropic's display_name
// is the ID, created_at is Created in RFC 3339 UTC, and first_id/last_id are
// null for an empty list. data is [] rather than null when models is empty.
func ModelsBody(d Dialect, models []ModelInfo) []byte {
	var v any
	if d == Anthropic {
		l := anthropicModelList{Data: make([]anthropicModel, 0, len(models))}
		for _, m := range models {
			l.Data = append(l.Data, anthropicModel{
				Type:        "model",
				ID:          m.ID,
				DisplayName: m.ID,
				CreatedAt:   time.Unix(m.Created, 0).UTC().Format(time.RFC3339),
			})
		}
		if len(models) > 0 {
			l.FirstID, l.LastID = &models[0].ID, &models[len(models)-1].ID
		}
		v = l
	} else {
		l := openAIModelList{Object: "list", Data: make([]openAIModel, 0, len(models))}
		for _, m := range models {
			l.Data = append(l.Data, openAIModel{ID: m.ID, Object: "model", Created: m.Created, OwnedBy: m.OwnedBy})
		}
		v = l
	}
	b, err := marshal(v)
	if err != nil {
		// Unreachable for these types; an empty list is still valid.
		if d == Anthropic {
			return []byte(`{"data":[],"has_more":false,"first_id":null,"last_id":null}`)
		}
		return []byte(`{"object":"list","data":[]}`)
	}
	return b
}
