"""Answer generation: extractive and optional LLM answerers."""
