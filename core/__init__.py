"""The base every part of wikibot stands on: settings, the database and its migrations, the prompt and its
citation grammar, and the vLLM client (serving and adapters). It imports none of retrieval/, bot/, training/."""
