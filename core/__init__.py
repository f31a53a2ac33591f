"""The pure domain: commands, rules and messages. Imports nothing from our other packages or frameworks."""
