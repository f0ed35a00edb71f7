package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/backend"
)

func newServersTokenCommand(app *App, g *globalOptions) *cobra.Command {
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
			ctx := cmd.Context()
			return withServer(ctx, app, g, args[0], func(s backend.Store, sv store.Server) error {
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
					"  HEARTBEAT_TOKEN=<token> heartbeat push --url URL --server-id %d\n", sv.Name, sv.ID, verb, sv.ID)
				return err
			})
		},
	}
}
