"""Fleet learning with tinytrain: a Flower ServerApp and ClientApp training digits-mlp."""
