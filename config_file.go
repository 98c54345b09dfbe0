package main

// The YAML configuration file of `metastore serve` (--config-file), and the
// environment layer's plumbing.
//
// A setting comes from, highest precedence first: a command-line flag, a
// METASTORE_<FLAG> environment variable, the config file, the flag's default.
// The file's keys are the flag names, as in etcd's config file
// (`data-dir: /var/lib/metastore`, `initial-cluster: m1=http://...`).
//
// The file layer is generic over the serve command's cli.Flag list: a flag
// added to serve is a valid key without any change here. Keys are checked
// against a scratch flag.FlagSet built from a fresh copy of serve's flags
// (each flag type parses its own values, so a key's value is validated by
// the very code that parses the flag), then applied to the live context with
// cli.Context.Set for every key that no flag or environment variable set.

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// configFileFlag names serve's --config-file flag. It cannot be a key of the
// file itself.
const configFileFlag = "config-file"

// envName is the environment variable of a flag: METASTORE_DATA_DIR for
// --data-dir.
func envName(flagName string) string {
	return "METASTORE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// setFlagEnvVars sets the EnvVars of any urfave/cli v2 flag. Every v2 flag
// type (StringFlag, IntFlag, StringSliceFlag, GenericFlag, ...) is a pointer
// to a struct with an EnvVars field, so one reflective assignment covers the
// flag types serve uses today and any a later flag brings.
func setFlagEnvVars(f cli.Flag, envs []string) {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("main: flag --%s is a %T, not a pointer to a urfave/cli flag struct", f.Names()[0], f))
	}
	field := v.Elem().FieldByName("EnvVars")
	if !field.IsValid() || !field.CanSet() || field.Type() != reflect.TypeOf([]string(nil)) {
		panic(fmt.Sprintf("main: flag --%s (%T) has no EnvVars []string field", f.Names()[0], f))
	}
	field.Set(reflect.ValueOf(envs))
}

// withConfigFile adds --config-file to serve's command and applies the file
// before its Action runs. The file is validated against fresh copies of
// serve's flags (serveFileFlags), never against the live ones.
func withConfigFile(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, &cli.StringFlag{
		Name:    configFileFlag,
		EnvVars: []string{envName(configFileFlag)},
		Usage:   "YAML file of serve settings, keys named as the flags (data-dir: /var/lib/metastore); flags and METASTORE_* variables take precedence over it",
	})
	before := cmd.Before
	cmd.Before = func(c *cli.Context) error {
		if before != nil {
			if err := before(c); err != nil {
				return err
			}
		}
		return applyConfigFile(c)
	}
	return cmd
}

// serveFileFlags are fresh copies of the flags a config file may set: serve's
// flags without --config-file.
func serveFileFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range serveCommand().Flags {
		if f.Names()[0] != configFileFlag {
			out = append(out, f)
		}
	}
	return out
}

// applyConfigFile reads --config-file, if given, and sets every key of it
// that neither a flag nor an environment variable set.
func applyConfigFile(c *cli.Context) error {
	path := c.String(configFileFlag)
	if path == "" {
		return nil
	}
	settings, _, err := loadConfigFile(path, serveFileFlags())
	if err != nil {
		return err
	}
	for _, s := range settings {
		if c.IsSet(s.name) {
			continue // a flag or METASTORE_<FLAG> wins over the file
		}
		for _, v := range s.values {
			if err := c.Set(s.name, v); err != nil {
				return fmt.Errorf("config file %s: key %q (line %d): %w", path, s.name, s.line, err)
			}
		}
	}
	return nil
}

// setting is one key of a config file, its value(s) as flag syntax.
type setting struct {
	name   string
	values []string // one per Set call: several only for a sequence given to a slice flag
	line   int
}

// loadConfigFile reads and validates a config file against flags (fresh
// copies: their environment variables are ignored and they are applied to a
// scratch flag set). It returns the settings in file order and the scratch
// flag set holding the file's values over the defaults.
func loadConfigFile(path string, flags []cli.Flag) ([]setting, *flag.FlagSet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config file: %w", err)
	}
	settings, set, err := parseConfig(b, flags)
	if err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return settings, set, nil
}

// parseConfig is loadConfigFile on the file's bytes. Every error is one line
// naming the offending key.
func parseConfig(b []byte, flags []cli.Flag) ([]setting, *flag.FlagSet, error) {
	set, byName, err := scratchFlagSet(flags)
	if err != nil {
		return nil, nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, errors.New(oneLine(err.Error()))
	}
	if doc.Kind == 0 { // empty file (or only comments): all defaults
		return nil, set, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		if root.ShortTag() == "!!null" {
			return nil, set, nil
		}
		return nil, nil, fmt.Errorf("line %d: want a mapping of flag names to values", root.Line)
	}
	var out []setting
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		if k.Kind != yaml.ScalarNode {
			return nil, nil, fmt.Errorf("line %d: keys must be flag names", k.Line)
		}
		if prev, dup := seen[name]; dup {
			return nil, nil, fmt.Errorf("key %q (line %d): duplicate (first on line %d)", name, k.Line, prev)
		}
		seen[name] = k.Line
		f, ok := byName[name]
		if !ok {
			if name == configFileFlag {
				return nil, nil, fmt.Errorf("key %q (line %d): a config file cannot name another", name, k.Line)
			}
			return nil, nil, fmt.Errorf("key %q (line %d): unknown key (keys are the flags of 'metastore serve')", name, k.Line)
		}
		values, err := nodeValues(v, isSliceFlag(f))
		if err != nil {
			return nil, nil, fmt.Errorf("key %q (line %d): %w", name, k.Line, err)
		}
		if values == nil {
			continue // `key:` or `key: null` leaves the default
		}
		for _, val := range values {
			if err := set.Set(name, val); err != nil {
				return nil, nil, fmt.Errorf("key %q (line %d): invalid value %q: want %s", name, k.Line, val, wantType(set.Lookup(name)))
			}
		}
		out = append(out, setting{name: name, values: values, line: k.Line})
	}
	return out, set, nil
}

// scratchFlagSet applies flags to a new flag set with their environment
// variables removed, so it holds defaults only.
func scratchFlagSet(flags []cli.Flag) (*flag.FlagSet, map[string]cli.Flag, error) {
	set := flag.NewFlagSet("config", flag.ContinueOnError)
	byName := map[string]cli.Flag{}
	for _, f := range flags {
		setFlagEnvVars(f, nil)
		if err := f.Apply(set); err != nil {
			return nil, nil, err
		}
		for _, n := range f.Names() {
			byName[n] = f
		}
	}
	return set, byName, nil
}

// nodeValues turns a YAML value into flag syntax. A scalar is its text as
// written; a sequence of scalars is one value per item for a slice flag and
// a comma-separated list otherwise (URL lists, --initial-cluster). Null is
// nil: the key keeps its default.
func nodeValues(v *yaml.Node, slice bool) ([]string, error) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.ScalarNode:
		if v.ShortTag() == "!!null" {
			return nil, nil
		}
		return []string{v.Value}, nil
	case yaml.SequenceNode:
		var items []string
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode || it.ShortTag() == "!!null" {
				return nil, fmt.Errorf("list items must be plain values")
			}
			items = append(items, it.Value)
		}
		if len(items) == 0 {
			return nil, fmt.Errorf("empty list")
		}
		if slice {
			return items, nil
		}
		return []string{strings.Join(items, ",")}, nil
	default:
		return nil, fmt.Errorf("want a value, got a mapping")
	}
}

func isSliceFlag(f cli.Flag) bool {
	sf, ok := f.(cli.DocGenerationSliceFlag)
	return ok && sf.IsSliceFlag()
}

// wantType describes what a flag's parser accepts, for error messages.
func wantType(fl *flag.Flag) string {
	g, ok := fl.Value.(flag.Getter)
	if !ok {
		return "a valid value for --" + fl.Name
	}
	switch g.Get().(type) {
	case bool:
		return "true or false"
	case time.Duration:
		return "a duration such as 500ms, 10s or 5m"
	case int, int64:
		return "an integer"
	case uint, uint64:
		return "a non-negative integer"
	case float64:
		return "a number"
	default:
		return "a valid value for --" + fl.Name
	}
}

// effectiveConfig renders every key of set in flags' order as YAML, with
// typed values (numbers and booleans unquoted, durations as 10s), so the
// output is itself a valid config file.
func effectiveConfig(set *flag.FlagSet, flags []cli.Flag) ([]byte, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range flags {
		name := f.Names()[0]
		fl := set.Lookup(name)
		if fl == nil {
			continue
		}
		v := flagValue(fl)
		var val yaml.Node
		if err := val.Encode(v); err != nil {
			return nil, fmt.Errorf("key %q: %w", name, err)
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, &val)
	}
	return yaml.Marshal(m)
}

// flagValue is a flag's current value as a plain Go value: string, number,
// bool, a duration's text, or a slice for cli's slice flags (whose Get
// returns their wrapper struct, and whose Value method the slice).
func flagValue(fl *flag.Flag) any {
	if m := reflect.ValueOf(fl.Value).MethodByName("Value"); m.IsValid() &&
		m.Type().NumIn() == 0 && m.Type().NumOut() == 1 && m.Type().Out(0).Kind() == reflect.Slice {
		return m.Call(nil)[0].Interface()
	}
	g, ok := fl.Value.(flag.Getter)
	if !ok {
		return fl.Value.String()
	}
	switch v := g.Get().(type) {
	case string, bool, int, int64, uint, uint64, float64:
		return v
	default: // time.Duration, cli.Timestamp, ...
		return fl.Value.String()
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
