"""The building blocks of ``instance_adv``: adversarial examples and the regularisers, request streams."""
