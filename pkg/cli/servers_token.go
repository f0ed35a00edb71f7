package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

// serversTokenOptions is `servers token`'s input: the server, by id or
// name.
type serversTokenOptions struct{ Ref string }

func newServersTokenCommand(app *App, g *globalOptions) *cobra.Command {
	o := &serversTokenOptions{}
	return &cobra.Command{
		Use:   "token ID|NAME",
		Short: "Create or rotate a server's API token for `heartbeat push` (printed once)",
		Long: `Issues a new API token for a server that pushes its own heartbeats
(POST /api/heartbeat/ID/ or ` + "`heartbeat push`" + `), and prints it once: the
token alone on stdout, so a script can capture it, and what to do with it on
stderr. Only a hash is stored, so a lost token cannot be shown again: run the
command again to rotate it. Rotating stops the old token at once.`,
		Example: `  heartbeat servers token web1
  TOKEN=$(heartbeat servers token 42)`,
		Args: exactArgs("ID|NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Ref = args[0]
			return runServersToken(cmd.Context(), app, g, o)
		},
	}
}

func runServersToken(ctx context.Context, app *App, g *globalOptions, o *serversTokenOptions) error {
	return withServer(ctx, app, g, o.Ref, func(s backend.Store, sv store.Server) error {
		token, hash, err := store.NewToken()
		if err != nil {
			return err
		}
		replaced, err := s.SetServerToken(ctx, sv.ID, hash)
		if err != nil {
			return err
		}
		verb := "created"
		if replaced {
			verb = "rotated (the old token no longer works)"
		}
		if _, err := fmt.Fprintln(app.Out, token); err != nil {
			return err
		}
		_, err = fmt.Fprintf(app.Err, "API token for server %s (id %d) %s. It is shown only once; on the server run:\n"+
			"  HEARTBEAT_TOKEN=<token> heartbeat push --url URL --server-id %d\n", output.Escape(sv.Name), sv.ID, verb, sv.ID)
		return err
	})
}
