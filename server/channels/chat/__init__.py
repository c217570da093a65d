"""Live chat: the embeddable widget, the hosted chat page, the agents' queue and console.

Every chat is a ticket (channel "chat", channel_ref = the chat session's id) opened with the
first message; when the chat ends the worker adds the rest of the conversation to it as one
transcript reply (`chat.transcript`). Messages travel over the one `/live` websocket on the
`chat:{id}` channel; the waiting queue on `chatq:0`.
"""
