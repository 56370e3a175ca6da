package slackfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Block Kit limits, from Slack's Block Kit reference.
const (
	maxBlocks            = 50
	maxBlockID           = 255
	maxActionID          = 255
	maxSectionText       = 3000
	maxSectionFields     = 10
	maxSectionFieldText  = 2000
	maxHeaderText        = 150
	maxContextElements   = 10
	maxContextText       = 3000
	maxActionsElements   = 25
	maxButtonText        = 75
	maxButtonValue       = 2000
	maxURL               = 3000
	maxAccessibility     = 75
	maxConfirmTitle      = 100
	maxConfirmText       = 300
	maxConfirmButton     = 30
	maxImageAltText      = 2000
	maxImageTitle        = 2000
	maxMarkdownBlockText = 12000
	maxPlaceholder       = 150
	maxSelectOptions     = 100
	maxOverflowOptions   = 5
	maxChoiceOptions     = 10
	maxOptionText        = 75
	maxOptionValue       = 150
	maxInputLabel        = 2000
	maxTextObject        = 3000
)

// knownBlocks are the block types Slack accepts in messages.
var knownBlocks = map[string]bool{
	"actions": true, "context": true, "context_actions": true, "divider": true,
	"file": true, "header": true, "image": true, "input": true, "markdown": true,
	"rich_text": true, "section": true, "video": true, "table": true, "call": true,
	"data_table": true, "data_visualization": true, "task_card": true, "plan": true,
	"alert": true, "card": true, "carousel": true,
}

// interactive elements allowed in actions blocks and section accessories.
var interactiveElements = map[string]bool{
	"button": true, "checkboxes": true, "datepicker": true, "datetimepicker": true,
	"multi_static_select": true, "multi_external_select": true, "multi_users_select": true,
	"multi_conversations_select": true, "multi_channels_select": true,
	"overflow": true, "radio_buttons": true, "static_select": true, "external_select": true,
	"users_select": true, "conversations_select": true, "channels_select": true,
	"timepicker": true, "workflow_button": true,
}

// input-only elements, allowed in input blocks.
var inputElements = map[string]bool{
	"plain_text_input": true, "email_text_input": true, "url_text_input": true,
	"number_input": true, "file_input": true, "rich_text_input": true,
}

type obj = map[string]json.RawMessage

// blockValidator collects Block Kit violations the way Slack reports them:
// "<problem> [json-pointer:/blocks/0/text/text]".
type blockValidator struct {
	errs      []string
	blockIDs  map[string]bool
	actionIDs map[string]bool
	perBlock  bool
}

func (v *blockValidator) fail(ptr, format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf(format, args...)+" [json-pointer:"+ptr+"]")
}

// validateBlocks checks a blocks argument. It answers invalid_blocks_format
// when it is not a JSON array of objects and invalid_blocks when a block
// breaks a Block Kit rule.
func validateBlocks(s string, perBlockActionIDs bool) (json.RawMessage, *apiError) {
	var blocks []json.RawMessage
	if err := json.Unmarshal([]byte(s), &blocks); err != nil || blocks == nil {
		return nil, errf("invalid_blocks_format")
	}
	v := &blockValidator{blockIDs: map[string]bool{}, actionIDs: map[string]bool{}, perBlock: perBlockActionIDs}
	if len(blocks) > maxBlocks {
		v.fail("/blocks", "no more than %d items allowed", maxBlocks)
	}
	for i, raw := range blocks {
		ptr := fmt.Sprintf("/blocks/%d", i)
		b, ok := asObject(raw)
		if !ok {
			return nil, errf("invalid_blocks_format")
		}
		if v.perBlock {
			v.actionIDs = map[string]bool{}
		}
		v.block(ptr, b)
	}
	if len(v.errs) > 0 {
		return nil, errf("invalid_blocks", v.errs...)
	}
	if len(blocks) == 0 {
		return nil, nil
	}
	return compact(s), nil
}

func (v *blockValidator) block(ptr string, b obj) {
	typ, ok := v.requiredString(ptr, b, "type")
	if !ok {
		return
	}
	if !knownBlocks[typ] {
		v.fail(ptr+"/type", "unsupported type: %s", typ)
		return
	}
	if id, present, ok := stringField(b, "block_id"); present {
		switch {
		case !ok:
			v.fail(ptr+"/block_id", "must be a string")
		case utf8.RuneCountInString(id) > maxBlockID:
			v.fail(ptr+"/block_id", "must be less than %d characters", maxBlockID+1)
		case v.blockIDs[id]:
			v.fail(ptr+"/block_id", "duplicate block_id: %s", id)
		default:
			v.blockIDs[id] = true
		}
	}
	switch typ {
	case "section":
		_, hasText := b["text"]
		fields, hasFields := b["fields"]
		if !hasText && !hasFields {
			v.fail(ptr, "must provide either text or fields")
		}
		if hasText {
			v.textObject(ptr+"/text", b["text"], false, maxSectionText)
		}
		if hasFields {
			items, ok := asArray(fields)
			switch {
			case !ok:
				v.fail(ptr+"/fields", "must provide an array")
			case len(items) == 0:
				v.fail(ptr+"/fields", "must provide at least 1 item")
			case len(items) > maxSectionFields:
				v.fail(ptr+"/fields", "no more than %d items allowed", maxSectionFields)
			}
			for i, f := range items {
				v.textObject(fmt.Sprintf("%s/fields/%d", ptr, i), f, false, maxSectionFieldText)
			}
		}
		if acc, ok := b["accessory"]; ok {
			v.element(ptr+"/accessory", acc, func(t string) bool { return interactiveElements[t] || t == "image" })
		}
	case "header":
		if v.requiredField(ptr, b, "text") {
			v.textObject(ptr+"/text", b["text"], true, maxHeaderText)
		}
	case "context":
		items, ok := v.requiredArray(ptr, b, "elements", maxContextElements)
		if !ok {
			return
		}
		for i, raw := range items {
			eptr := fmt.Sprintf("%s/elements/%d", ptr, i)
			e, ok := asObject(raw)
			if !ok {
				v.fail(eptr, "must provide an object")
				continue
			}
			t, _, _ := stringField(e, "type")
			switch t {
			case "image":
				v.imageElement(eptr, e)
			case "plain_text", "mrkdwn":
				v.textObject(eptr, raw, false, maxContextText)
			default:
				v.fail(eptr+"/type", "unsupported type: %s", t)
			}
		}
	case "actions":
		items, ok := v.requiredArray(ptr, b, "elements", maxActionsElements)
		if !ok {
			return
		}
		for i, raw := range items {
			v.element(fmt.Sprintf("%s/elements/%d", ptr, i), raw, func(t string) bool { return interactiveElements[t] })
		}
	case "image":
		v.imageElement(ptr, b)
		if _, ok := b["title"]; ok {
			v.textObject(ptr+"/title", b["title"], true, maxImageTitle)
		}
	case "markdown":
		if text, ok := v.requiredString(ptr, b, "text"); ok && utf8.RuneCountInString(text) > maxMarkdownBlockText {
			v.fail(ptr+"/text", "must be less than %d characters", maxMarkdownBlockText+1)
		}
	case "input":
		if v.requiredField(ptr, b, "label") {
			v.textObject(ptr+"/label", b["label"], true, maxInputLabel)
		}
		if v.requiredField(ptr, b, "element") {
			v.element(ptr+"/element", b["element"], func(t string) bool { return interactiveElements[t] || inputElements[t] })
		}
	}
}

func (v *blockValidator) element(ptr string, raw json.RawMessage, allowed func(string) bool) {
	e, ok := asObject(raw)
	if !ok {
		v.fail(ptr, "must provide an object")
		return
	}
	typ, ok := v.requiredString(ptr, e, "type")
	if !ok {
		return
	}
	if !allowed(typ) {
		v.fail(ptr+"/type", "unsupported type: %s", typ)
		return
	}
	if typ == "image" {
		v.imageElement(ptr, e)
		return
	}
	if id, present, ok := stringField(e, "action_id"); present {
		switch {
		case !ok:
			v.fail(ptr+"/action_id", "must be a string")
		case utf8.RuneCountInString(id) > maxActionID:
			v.fail(ptr+"/action_id", "must be less than %d characters", maxActionID+1)
		case v.actionIDs[id]:
			v.fail(ptr+"/action_id", "duplicate action_id: %s", id)
		default:
			v.actionIDs[id] = true
		}
	}
	if c, ok := e["confirm"]; ok {
		v.confirm(ptr+"/confirm", c)
	}
	switch typ {
	case "button":
		if v.requiredField(ptr, e, "text") {
			v.textObject(ptr+"/text", e["text"], true, maxButtonText)
		}
		v.maxLen(ptr, e, "value", maxButtonValue)
		v.maxLen(ptr, e, "url", maxURL)
		v.maxLen(ptr, e, "accessibility_label", maxAccessibility)
		if style, present, _ := stringField(e, "style"); present && style != "primary" && style != "danger" {
			v.fail(ptr+"/style", "must be one of primary, danger")
		}
	case "static_select", "multi_static_select":
		v.placeholder(ptr, e)
		opts, hasOpts := e["options"]
		_, hasGroups := e["option_groups"]
		if !hasOpts && !hasGroups {
			v.fail(ptr, "must provide either options or option_groups")
		}
		if hasOpts {
			v.options(ptr+"/options", opts, maxSelectOptions)
		}
	case "overflow":
		if v.requiredField(ptr, e, "options") {
			v.options(ptr+"/options", e["options"], maxOverflowOptions)
		}
	case "radio_buttons", "checkboxes":
		if v.requiredField(ptr, e, "options") {
			v.options(ptr+"/options", e["options"], maxChoiceOptions)
		}
	case "external_select", "multi_external_select", "users_select", "multi_users_select",
		"conversations_select", "multi_conversations_select", "channels_select", "multi_channels_select":
		v.placeholder(ptr, e)
	}
}

func (v *blockValidator) placeholder(ptr string, e obj) {
	if p, ok := e["placeholder"]; ok {
		v.textObject(ptr+"/placeholder", p, true, maxPlaceholder)
	}
}

func (v *blockValidator) options(ptr string, raw json.RawMessage, limit int) {
	items, ok := asArray(raw)
	switch {
	case !ok:
		v.fail(ptr, "must provide an array")
		return
	case len(items) == 0:
		v.fail(ptr, "must provide at least 1 item")
	case len(items) > limit:
		v.fail(ptr, "no more than %d items allowed", limit)
	}
	for i, it := range items {
		optr := fmt.Sprintf("%s/%d", ptr, i)
		o, ok := asObject(it)
		if !ok {
			v.fail(optr, "must provide an object")
			continue
		}
		if v.requiredField(optr, o, "text") {
			v.textObject(optr+"/text", o["text"], false, maxOptionText)
		}
		v.maxLen(optr, o, "value", maxOptionValue)
	}
}

func (v *blockValidator) confirm(ptr string, raw json.RawMessage) {
	c, ok := asObject(raw)
	if !ok {
		v.fail(ptr, "must provide an object")
		return
	}
	for _, f := range []struct {
		name      string
		plainOnly bool
		limit     int
	}{
		{"title", true, maxConfirmTitle},
		{"text", false, maxConfirmText},
		{"confirm", true, maxConfirmButton},
		{"deny", true, maxConfirmButton},
	} {
		if v.requiredField(ptr, c, f.name) {
			v.textObject(ptr+"/"+f.name, c[f.name], f.plainOnly, f.limit)
		}
	}
	if style, present, _ := stringField(c, "style"); present && style != "primary" && style != "danger" {
		v.fail(ptr+"/style", "must be one of primary, danger")
	}
}

func (v *blockValidator) imageElement(ptr string, e obj) {
	if alt, ok := v.requiredString(ptr, e, "alt_text"); ok && utf8.RuneCountInString(alt) > maxImageAltText {
		v.fail(ptr+"/alt_text", "must be less than %d characters", maxImageAltText+1)
	}
	_, hasURL := e["image_url"]
	_, hasFile := e["slack_file"]
	if !hasURL && !hasFile {
		v.fail(ptr, "must provide either image_url or slack_file")
	}
	v.maxLen(ptr, e, "image_url", maxURL)
}

// textObject checks a text composition object: type plain_text (or mrkdwn
// unless plainOnly) and a text of 1 to limit characters.
func (v *blockValidator) textObject(ptr string, raw json.RawMessage, plainOnly bool, limit int) {
	t, ok := asObject(raw)
	if !ok {
		v.fail(ptr, "must provide an object")
		return
	}
	typ, ok := v.requiredString(ptr, t, "type")
	if ok {
		switch {
		case typ == "plain_text":
		case typ == "mrkdwn" && !plainOnly:
		case plainOnly:
			v.fail(ptr+"/type", "must be plain_text")
		default:
			v.fail(ptr+"/type", "must be one of plain_text, mrkdwn")
		}
	}
	text, ok := v.requiredString(ptr, t, "text")
	if !ok {
		return
	}
	n := utf8.RuneCountInString(text)
	switch {
	case n == 0:
		v.fail(ptr+"/text", "must be more than 0 characters")
	case n > min(limit, maxTextObject):
		v.fail(ptr+"/text", "must be less than %d characters", min(limit, maxTextObject)+1)
	}
}

func (v *blockValidator) maxLen(ptr string, o obj, key string, limit int) {
	s, present, ok := stringField(o, key)
	switch {
	case !present:
	case !ok:
		v.fail(ptr+"/"+key, "must be a string")
	case utf8.RuneCountInString(s) > limit:
		v.fail(ptr+"/"+key, "must be less than %d characters", limit+1)
	}
}

func (v *blockValidator) requiredField(ptr string, o obj, key string) bool {
	if raw, ok := o[key]; !ok || isNull(raw) {
		v.fail(ptr, "missing required field: %s", key)
		return false
	}
	return true
}

func (v *blockValidator) requiredString(ptr string, o obj, key string) (string, bool) {
	s, present, ok := stringField(o, key)
	switch {
	case !present:
		v.fail(ptr, "missing required field: %s", key)
		return "", false
	case !ok:
		v.fail(ptr+"/"+key, "must be a string")
		return "", false
	}
	return s, true
}

func (v *blockValidator) requiredArray(ptr string, o obj, key string, limit int) ([]json.RawMessage, bool) {
	if !v.requiredField(ptr, o, key) {
		return nil, false
	}
	items, ok := asArray(o[key])
	switch {
	case !ok:
		v.fail(ptr+"/"+key, "must provide an array")
		return nil, false
	case len(items) == 0:
		v.fail(ptr+"/"+key, "must provide at least 1 item")
	case len(items) > limit:
		v.fail(ptr+"/"+key, "no more than %d items allowed", limit)
	}
	return items, true
}

func stringField(o obj, key string) (s string, present, ok bool) {
	raw, present := o[key]
	if !present || isNull(raw) {
		return "", false, false
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", true, false
	}
	return s, true, true
}

func asObject(raw json.RawMessage) (obj, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var o obj
	if json.Unmarshal(raw, &o) != nil {
		return nil, false
	}
	return o, true
}

func asArray(raw json.RawMessage) ([]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var a []json.RawMessage
	if json.Unmarshal(raw, &a) != nil {
		return nil, false
	}
	return a, true
}

func isNull(raw json.RawMessage) bool { return strings.TrimSpace(string(raw)) == "null" }
