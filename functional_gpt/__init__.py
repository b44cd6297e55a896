"""functional_gpt: a GPT that trains and samples in pure Python on an immutable tape."""

__version__ = "0.1.0"
