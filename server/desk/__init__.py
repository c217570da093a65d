"""The ticket desk: tickets, conversations, macros, custom fields, the portal and the agent desk."""
