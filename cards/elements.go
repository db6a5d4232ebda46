package cards

// ColumnSet lays Columns side by side.
type ColumnSet struct {
	// Type always writes "ColumnSet"; there is nothing to set.
	Type      columnSetType `json:"type"`
	Columns   []Column      `json:"columns"`
	Spacing   string        `json:"spacing,omitempty"`
	Separator bool          `json:"separator,omitempty"`
	Style     string        `json:"style,omitempty"`
	Bleed     bool          `json:"bleed,omitempty"`
}

// Column is one column of a ColumnSet. Width is "auto", "stretch", a
// weight ("2") or pixels ("28px").
type Column struct {
	// Type always writes "Column"; there is nothing to set.
	Type                     columnType `json:"type"`
	Items                    []Element  `json:"items"`
	Width                    string     `json:"width,omitempty"`
	VerticalContentAlignment string     `json:"verticalContentAlignment,omitempty"`
	Spacing                  string     `json:"spacing,omitempty"`
}

// Image shows a picture; builders here only use data: URIs they made.
type Image struct {
	// Type always writes "Image"; there is nothing to set.
	Type    imageType `json:"type"`
	URL     string    `json:"url"`
	AltText string    `json:"altText,omitempty"`
	Width   string    `json:"width,omitempty"`
	Height  string    `json:"height,omitempty"`
	Spacing string    `json:"spacing,omitempty"`
}

// ActionSet shows buttons inside the body (the card's own Actions sit at
// the bottom).
type ActionSet struct {
	// Type always writes "ActionSet"; there is nothing to set.
	Type    actionSetType `json:"type"`
	Actions []Action      `json:"actions"`
	Spacing string        `json:"spacing,omitempty"`
}

// InputToggle is a checkbox whose value is ValueOn or ValueOff.
type InputToggle struct {
	// Type always writes "Input.Toggle"; there is nothing to set.
	Type       inputToggleType `json:"type"`
	ID         string          `json:"id"`
	Title      string          `json:"title"`
	Label      string          `json:"label,omitempty"`
	Value      string          `json:"value,omitempty"`
	ValueOn    string          `json:"valueOn,omitempty"`
	ValueOff   string          `json:"valueOff,omitempty"`
	Wrap       bool            `json:"wrap,omitempty"`
	IsRequired bool            `json:"isRequired,omitempty"`
	Spacing    string          `json:"spacing,omitempty"`
}

// InputChoiceSet picks one of Choices ("compact" style: a drop-down).
type InputChoiceSet struct {
	// Type always writes "Input.ChoiceSet"; there is nothing to set.
	Type         inputChoiceSetType `json:"type"`
	ID           string             `json:"id"`
	Label        string             `json:"label,omitempty"`
	Choices      []Choice           `json:"choices"`
	Value        string             `json:"value,omitempty"`
	Style        string             `json:"style,omitempty"`
	Placeholder  string             `json:"placeholder,omitempty"`
	IsRequired   bool               `json:"isRequired,omitempty"`
	ErrorMessage string             `json:"errorMessage,omitempty"`
	Wrap         bool               `json:"wrap,omitempty"`
	Spacing      string             `json:"spacing,omitempty"`
}

// Choice is one option of an InputChoiceSet.
type Choice struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// InputNumber is a number field with optional bounds.
type InputNumber struct {
	// Type always writes "Input.Number"; there is nothing to set.
	Type         inputNumberType `json:"type"`
	ID           string          `json:"id"`
	Label        string          `json:"label,omitempty"`
	Placeholder  string          `json:"placeholder,omitempty"`
	Value        *float64        `json:"value,omitempty"`
	Min          *float64        `json:"min,omitempty"`
	Max          *float64        `json:"max,omitempty"`
	IsRequired   bool            `json:"isRequired,omitempty"`
	ErrorMessage string          `json:"errorMessage,omitempty"`
	Spacing      string          `json:"spacing,omitempty"`
}

type (
	columnSetType      struct{}
	columnType         struct{}
	imageType          struct{}
	actionSetType      struct{}
	inputToggleType    struct{}
	inputChoiceSetType struct{}
	inputNumberType    struct{}
)

func (columnSetType) MarshalText() ([]byte, error)      { return []byte("ColumnSet"), nil }
func (columnType) MarshalText() ([]byte, error)         { return []byte("Column"), nil }
func (imageType) MarshalText() ([]byte, error)          { return []byte("Image"), nil }
func (actionSetType) MarshalText() ([]byte, error)      { return []byte("ActionSet"), nil }
func (inputToggleType) MarshalText() ([]byte, error)    { return []byte("Input.Toggle"), nil }
func (inputChoiceSetType) MarshalText() ([]byte, error) { return []byte("Input.ChoiceSet"), nil }
func (inputNumberType) MarshalText() ([]byte, error)    { return []byte("Input.Number"), nil }

func (*columnSetType) UnmarshalText([]byte) error      { return nil }
func (*columnType) UnmarshalText([]byte) error         { return nil }
func (*imageType) UnmarshalText([]byte) error          { return nil }
func (*actionSetType) UnmarshalText([]byte) error      { return nil }
func (*inputToggleType) UnmarshalText([]byte) error    { return nil }
func (*inputChoiceSetType) UnmarshalText([]byte) error { return nil }
func (*inputNumberType) UnmarshalText([]byte) error    { return nil }

func (ColumnSet) isElement()      {}
func (Image) isElement()          {}
func (ActionSet) isElement()      {}
func (InputToggle) isElement()    {}
func (InputChoiceSet) isElement() {}
func (InputNumber) isElement()    {}

// row lays items out left to right, each column as wide as it needs but
// the last, which takes the rest.
func row(spacing string, cols ...Column) ColumnSet {
	return ColumnSet{Columns: cols, Spacing: spacing}
}
