"""Forum to ticket: agents turn a community thread or a single post into a ticket, the two link
to each other, and an agent's public reply can be posted back to the thread."""
