// Package dashboard serves the daemon's web dashboard (upkeep daemon
// --http): a page for the host, a page per service with an hour of plots
// and a live log tail, the JSON behind them, and, when enabled and
// authenticated, the CLI's actions.
//
// It talks to the daemon only through the same calls the control socket
// answers (Backend), so a page and `upkeep status` never disagree, and
// the page's live updates come from the daemon's event stream (Follow),
// not from polling each service. Plots are SVG drawn here, in Go: the page
// needs no plotting library, no build step and nothing from a CDN.
package dashboard
