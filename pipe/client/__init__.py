"""The registry client of the native engine, along its seams: `answers` (what an answer means),
`auth` (challenge, token), `transport` (the request loop and its retry), `api` (the operations)."""
