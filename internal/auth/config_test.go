package auth

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfig_Flags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.Equal(t, Config{Type: TypeHeader}, c)
	require.NoError(t, c.Validate())

	require.NoError(t, fs.Parse([]string{"-auth.type=token", "-auth.token-file=/etc/argus/tokens.yaml"}))
	require.Equal(t, Config{Type: TypeToken, TokenFile: "/etc/argus/tokens.yaml"}, c)
	require.NoError(t, c.Validate())
}

func TestConfig_Validate(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg Config
		msg string
	}{
		"unknown type":          {Config{Type: "basic"}, `-auth.type must be header or token, got "basic"`},
		"empty type":            {Config{}, `-auth.type must be header or token, got ""`},
		"token without file":    {Config{Type: TypeToken}, "-auth.type=token requires -auth.token-file"},
		"header with file":      {Config{Type: TypeHeader, TokenFile: "tokens.yaml"}, "-auth.token-file is set but -auth.type=header ignores it"},
		"token with file valid": {Config{Type: TypeToken, TokenFile: "tokens.yaml"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.msg == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.msg)
		})
	}
}
