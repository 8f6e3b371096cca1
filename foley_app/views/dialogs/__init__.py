"""Dialogs: messages and questions (the `Prompter`), export, preferences, recovery, shortcuts."""
