package tui

import "github.com/charmbracelet/bubbles/key"

// keyMap holds every binding; screens pick the ones they show in the help.
type keyMap struct {
	Up, Down, Left, Right, Tab, ShiftTab key.Binding
	Enter, Next, Back, Quit, ForceQuit   key.Binding
	Edit, Add, Remove, Paste, Submit     key.Binding
	Cancel, Save, Export, Ack, Apply     key.Binding
	Accept, Refuse, Yes, No, PgUp, PgDn  key.Binding
	Check, Certs                         key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, help, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return keyMap{
		Up:        b([]string{"up", "k"}, "↑/k", "up"),
		Down:      b([]string{"down", "j"}, "↓/j", "down"),
		Left:      b([]string{"left", "h"}, "←/h", "left"),
		Right:     b([]string{"right", "l"}, "→/l", "right"),
		Tab:       b([]string{"tab"}, "tab", "next cell"),
		ShiftTab:  b([]string{"shift+tab"}, "shift+tab", "previous field"),
		Enter:     b([]string{"enter"}, "enter", "choose"),
		Next:      b([]string{"n"}, "n", "next"),
		Back:      b([]string{"esc", "b"}, "esc/b", "back"),
		Quit:      b([]string{"q"}, "q", "quit"),
		ForceQuit: b([]string{"ctrl+c"}, "ctrl+c", "quit"),
		Edit:      b([]string{"enter", "e"}, "enter/e", "edit"),
		Add:       b([]string{"a"}, "a", "add"),
		Remove:    b([]string{"d", "delete"}, "d", "remove"),
		Paste:     b([]string{"p"}, "p", "paste"),
		Submit:    b([]string{"ctrl+s"}, "ctrl+s", "add the hosts"),
		Cancel:    b([]string{"esc"}, "esc", "cancel"),
		Save:      b([]string{"s"}, "s", "save"),
		Export:    b([]string{"x"}, "x", "export dry run"),
		Ack:       b([]string{"w"}, "w", "ack warnings"),
		Apply:     b([]string{"a"}, "a", "apply"),
		Accept:    b([]string{"y"}, "y", "trust key"),
		Refuse:    b([]string{"n"}, "n", "do not trust"),
		Yes:       b([]string{"y"}, "y", "yes"),
		No:        b([]string{"n", "esc"}, "n", "no"),
		PgUp:      b([]string{"pgup"}, "pgup", "scroll up"),
		PgDn:      b([]string{"pgdown", " "}, "pgdn", "scroll down"),
		Check:     b([]string{"c"}, "c", "check DNS live"),
		Certs:     b([]string{"c"}, "c", "create CA & certs"),
	}
}
