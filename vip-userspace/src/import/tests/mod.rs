//! Importer tests.
