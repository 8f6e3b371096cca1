"""The Foley editor (Qt): open a video, mark segments, generate Foley with the engine, audition, splice, export."""
