"""The app: the `wikibot` command and `wikibot up`, above retrieval/, bot/ and training/ (which import none of it)."""
