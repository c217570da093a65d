"""Ways tickets arrive and leave besides the web form: email, live chat, webhooks, forum."""
