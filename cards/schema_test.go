package cards_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// schema15 lists, per Adaptive Card 1.5 type, the properties the schema
// defines for it (of those this package may write). Anything else in a
// card is a typo or a property of another version.
var schema15 = map[string][]string{
	"AdaptiveCard":    {"$schema", "version", "body", "actions", "refresh", "msteams", "fallbackText", "speak", "lang", "minHeight", "rtl", "verticalContentAlignment", "backgroundImage", "selectAction", "authentication", "metadata"},
	"TextBlock":       {"text", "wrap", "size", "weight", "color", "isSubtle", "maxLines", "horizontalAlignment", "fontType", "style"},
	"FactSet":         {"facts"},
	"Container":       {"items", "style", "bleed", "verticalContentAlignment", "selectAction", "minHeight", "backgroundImage", "rtl"},
	"ColumnSet":       {"columns", "style", "bleed", "selectAction", "minHeight", "horizontalAlignment"},
	"Column":          {"items", "width", "verticalContentAlignment", "style", "bleed", "selectAction", "minHeight", "backgroundImage", "rtl"},
	"Image":           {"url", "altText", "width", "height", "size", "style", "horizontalAlignment", "backgroundColor", "selectAction"},
	"ActionSet":       {"actions"},
	"Input.Text":      {"label", "placeholder", "maxLength", "isMultiline", "value", "isRequired", "regex", "errorMessage", "style", "inlineAction"},
	"Input.Number":    {"label", "placeholder", "value", "min", "max", "isRequired", "errorMessage"},
	"Input.Toggle":    {"label", "title", "value", "valueOn", "valueOff", "wrap", "isRequired", "errorMessage"},
	"Input.ChoiceSet": {"label", "choices", "value", "style", "placeholder", "isRequired", "errorMessage", "wrap", "isMultiSelect"},
	"Action.Execute":  {"title", "verb", "data", "style", "fallback", "iconUrl", "tooltip", "isEnabled", "mode", "associatedInputs"},
	"Action.Submit":   {"title", "data", "style", "fallback", "iconUrl", "tooltip", "isEnabled", "mode", "associatedInputs"},
	"Action.ShowCard": {"title", "card", "style", "fallback", "iconUrl", "tooltip", "isEnabled", "mode"},
	"Action.OpenUrl":  {"title", "url", "style", "fallback", "iconUrl", "tooltip", "isEnabled", "mode"},
}

// common are the properties every element or action may carry.
var common = []string{"type", "id", "spacing", "separator", "isVisible", "height", "requires", "fallback"}

// enums are the allowed values of enumerated properties (Adaptive Cards 1.5).
var enums = map[string][]string{
	"size":                     {"small", "default", "medium", "large", "extraLarge"},
	"weight":                   {"lighter", "default", "bolder"},
	"color":                    {"default", "dark", "light", "accent", "good", "warning", "attention"},
	"spacing":                  {"none", "small", "default", "medium", "large", "extraLarge", "padding"},
	"horizontalAlignment":      {"left", "center", "right"},
	"verticalContentAlignment": {"top", "center", "bottom"},
}

func TestCardsMatchSchema15(t *testing.T) {
	t.Parallel()
	for name, c := range allCards() {
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var root any
		_ = json.Unmarshal(raw, &root)
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case []any:
				for i, e := range v {
					walk(fmt.Sprintf("%s[%d]", path, i), e)
				}
			case map[string]any:
				typ, _ := v["type"].(string)
				allowed, known := schema15[typ]
				if known {
					for k, val := range v {
						if !slices.Contains(allowed, k) && !slices.Contains(common, k) {
							t.Errorf("%s %s: %s has no property %q in Adaptive Cards 1.5", name, path, typ, k)
						}
						if vals, ok := enums[k]; ok && typ != "Input.ChoiceSet" && typ != "Input.Text" && !(k == "size" && typ == "Image") {
							if s, _ := val.(string); !slices.Contains(vals, s) {
								t.Errorf("%s %s: %s.%s = %v", name, path, typ, k, val)
							}
						}
					}
				}
				if strings.HasPrefix(typ, "Input.") && v["label"] == nil && typ != "Input.Toggle" {
					t.Errorf("%s %s: %s without a label", name, path, typ)
				}
				for k, e := range v {
					if k == "data" || k == "msteams" { // free-form / Teams-defined
						continue
					}
					walk(path+"."+k, e)
				}
			}
		}
		walk("$", root)
	}
}
