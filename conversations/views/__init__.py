"""The chat's HTTP views, by audience: the pages, a turn of the chat, managing the list, history and sharing."""
