// Keeps module libraries non-empty while a module has no sources yet.
