"""Development tools apart from the product: the Waldur Mastermind stand-in and the demo."""
